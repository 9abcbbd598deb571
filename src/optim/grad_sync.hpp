// Gradient synchronisation by parameter kind (docs/design.md, "One step, as data"): replicated
// gradients are summed over every rank, expert gradients over the ranks holding the same experts.
// Each rank's loss is its share of the global batch's mean, so the sums are the global batch's
// gradient.
#pragma once
#include "comm/process_group.hpp"
#include "tensor/params.hpp"

namespace mt {

void sync_gradients(ParamRegistry& reg, ProcessGroup& world, ProcessGroup& expert_dp);

}  // namespace mt
