// The measured GEMM rate behind MFU.
#include "train/gemm_peak.hpp"

#include <algorithm>

#include "tensor/device.hpp"
#include "tensor/ops.hpp"
#include "tensor/timing.hpp"

namespace mt {

double gemm_peak_flops(Arena& arena, const GptConfig& c, int64_t tokens) {
  const int64_t d = c.d_model, ff = std::max(c.d_ff, c.moe.d_ff);
  struct Shape {
    int64_t k, n;
    bool tb;
  };
  // fc1 [tokens, d] x [d, ff], fc2 [tokens, ff] x [ff, d], the head [tokens, d] x [V, d]^T.
  double peak = 0;
  for (const Shape s : {Shape{d, ff, false}, Shape{ff, d, false}, Shape{d, c.vocab, true}}) {
    arena.reset();
    const Tensor x = arena.alloc({tokens, s.k}),
                 w = arena.alloc(s.tb ? mt::Shape{s.n, s.k} : mt::Shape{s.k, s.n}),
                 y = arena.alloc({tokens, s.n});
    ops::fill(x, 0.01f);
    ops::fill(w, 0.01f);
    const auto gemm = [&] {
      ops::matmul(x, false, w, s.tb, y);
      wait_for(arena.device());
    };
    gemm();  // warm-up
    peak = std::max(peak, 2.0 * double(tokens * s.k * s.n) / best_seconds(5, gemm));
  }
  arena.reset();
  return peak;
}

}  // namespace mt
