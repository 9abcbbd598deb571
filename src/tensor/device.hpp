// Device selection: the --device names (cuda only in a build with the CUDA backend).
#pragma once
#include <string>

#include "tensor/tensor.hpp"

namespace mt {

// "cpu" or "cuda"; throws mt::Error on any other name, or on "cuda" in a CPU-only build.
Device parse_device(const std::string& name);
const char* device_name(Device d);
// Returns when the work queued on the device has finished (a no-op on the CPU): for timings.
void wait_for(Device d);

}  // namespace mt
