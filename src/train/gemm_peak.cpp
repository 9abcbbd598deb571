// The measured GEMM rate behind MFU.
#include "train/gemm_peak.hpp"

#include <algorithm>

#include "tensor/device.hpp"
#include "tensor/ops.hpp"
#include "tensor/timing.hpp"

namespace mt {

double gemm_peak_flops(Arena& arena, const GptConfig& c, int64_t tokens) {
  const int64_t d = c.d_model, ff = std::max(c.d_ff, c.moe.d_ff);
  arena.reset();
  const Tensor x = arena.alloc({tokens, d}), w = arena.alloc({ff, d}),
               y = arena.alloc({tokens, ff});
  ops::fill(x, 0.01f);
  ops::fill(w, 0.01f);
  const auto gemm = [&] {
    ops::matmul(x, false, w, true, y);
    wait_for(arena.device());
  };
  gemm();  // warm-up
  const double best = best_seconds(5, gemm);
  arena.reset();
  return 2.0 * double(tokens * d * ff) / best;
}

}  // namespace mt
