// Shared by the benchmark subcommands: best-of-N timing.
#pragma once
#include <algorithm>
#include <chrono>

#include "io/config.hpp"
#include "tensor/device.hpp"

namespace mt::cli {

// Best-of-`reps` seconds of fn().
template <typename F>
double best_seconds(int reps, F&& fn) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

int bench_a2a(const Config& cfg, int reps);
int bench_moe(const Config& cfg, Device device, int reps);

}  // namespace mt::cli
