// Best-of-N wall-clock timing, for the benchmarks and the GEMM rate behind MFU.
#pragma once
#include <algorithm>
#include <chrono>

namespace mt {

// Best-of-`reps` seconds of fn() (fn waits for the device itself where it must).
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

}  // namespace mt
