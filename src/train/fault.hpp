// A test-only fault hook: MOETRAIN_FAULT_HANG=RANK:STEP makes that rank hang (sleep, outside
// MPI) when it begins that step (1-based, as printed), so that tests can show the other ranks'
// bounded wait (dist.timeout_s) without a debugger.
#pragma once
#include <cstdint>

namespace mt {

void fault_hang_point(int rank, int64_t step);

}  // namespace mt
