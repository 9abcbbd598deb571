// The measured GEMM rate behind MFU.
#include "train/gemm_peak.hpp"

#include <algorithm>
#include <chrono>

#include "tensor/device.hpp"
#include "tensor/ops.hpp"

namespace mt {

double gemm_peak_flops(Arena& arena, const GptConfig& c, int64_t tokens) {
  const int64_t d = c.d_model, ff = std::max(c.d_ff, c.moe.d_ff);
  arena.reset();
  const Tensor x = arena.alloc({tokens, d}), w = arena.alloc({ff, d}),
               y = arena.alloc({tokens, ff});
  ops::fill(x, 0.01f);
  ops::fill(w, 0.01f);
  double best = 1e30;
  for (int i = 0; i < 6; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    ops::matmul(x, false, w, true, y);
    wait_for(arena.device());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) best = std::min(best, s);
  }
  arena.reset();
  return 2.0 * double(tokens * d * ff) / best;
}

}  // namespace mt
