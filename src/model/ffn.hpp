// Feed-forward block: fc1 (d -> f), GELU (tanh form), fc2 (f -> d). The free functions serve the
// dense FFN and every expert (whose weights are slices of [E, ...] tensors).
#pragma once
#include <string>

#include "tensor/arena.hpp"
#include "tensor/params.hpp"

namespace mt {

struct FfnWeights {
  Tensor w1, b1, w2, b2;  // [d, f], [f], [f, d], [d]
};
struct FfnCache {
  Tensor x, pre, act;  // input, fc1 output (GELU input), GELU output
};
// Writes y (the shape of x); fc1's bias and the GELU are one pass (ops::bias_gelu).
void ffn_forward(Arena& arena, const Tensor& x, const FfnWeights& w, FfnCache& cache,
                 const Tensor& y);
// Writes dx; accumulates into the gradients g.
void ffn_backward(Arena& arena, const Tensor& dy, const FfnWeights& w, const FfnWeights& g,
                  const FfnCache& cache, const Tensor& dx);

class Ffn {
 public:
  Ffn(ParamRegistry& reg, const std::string& prefix, int64_t d, int64_t f, float proj_std);
  using Cache = FfnCache;
  Tensor forward(Arena& arena, const Tensor& x, Cache& cache) const;
  Tensor backward(Arena& arena, const Tensor& dy, const Cache& cache) const;  // returns dx

 private:
  FfnWeights weights(bool grad) const;
  const ParamRegistry& reg_;
  int w1_, b1_, w2_, b2_;
};

}  // namespace mt
