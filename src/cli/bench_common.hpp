// Shared by the benchmark subcommands: their entry points and best-of-N timing.
#pragma once
#include "io/config.hpp"
#include "tensor/device.hpp"
#include "tensor/timing.hpp"

namespace mt::cli {

int bench_a2a(const Config& cfg, int reps);
int bench_moe(const Config& cfg, Device device, int reps);

}  // namespace mt::cli
