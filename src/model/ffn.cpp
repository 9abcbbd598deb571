// FFN: forward and backward side by side.
#include "model/ffn.hpp"

#include "model/linear.hpp"
#include "tensor/ops.hpp"

namespace mt {

void ffn_forward(Arena& arena, const Tensor& x, const FfnWeights& w, FfnCache& cache,
                 const Tensor& y) {
  cache.x = x;
  cache.pre = arena.alloc(x.shape.with_last(w.w1.size(1)));
  ops::matmul(x, false, w.w1, false, cache.pre);
  cache.act = arena.alloc(cache.pre.shape, ops::product_input_dtype(x.device));
  ops::bias_gelu(cache.pre, w.b1, cache.act);
  linear_forward(cache.act, w.w2, w.b2, y);
}

void ffn_backward(Arena& arena, const Tensor& dy, const FfnWeights& w, const FfnWeights& g,
                  const FfnCache& cache, const Tensor& dx) {
  Tensor dact = arena.alloc(cache.act.shape);
  linear_backward(dy, cache.act, w.w2, dact, g.w2, g.b2);
  ops::gelu_backward_bias(cache.pre, dact, g.b1);
  linear_backward(dact, cache.x, w.w1, dx, g.w1, {});
}

Ffn::Ffn(ParamRegistry& reg, const std::string& prefix, int64_t d, int64_t f, float proj_std)
    : reg_(reg),
      w1_(reg.add(prefix + "/fc1/w", {d, f}, Init::normal(0.02f))),
      b1_(reg.add(prefix + "/fc1/b", {f}, Init::zeros())),
      w2_(reg.add(prefix + "/fc2/w", {f, d}, Init::normal(proj_std))),
      b2_(reg.add(prefix + "/fc2/b", {d}, Init::zeros())) {}

FfnWeights Ffn::weights(bool grad) const {
  auto get = [&](int i) { return grad ? reg_.grad(i) : reg_.value(i); };
  return {get(w1_), get(b1_), get(w2_), get(b2_)};
}

Tensor Ffn::forward(Arena& arena, const Tensor& x, Cache& cache) const {
  Tensor y = arena.alloc(x.shape);
  ffn_forward(arena, x, weights(false), cache, y);
  return y;
}

Tensor Ffn::backward(Arena& arena, const Tensor& dy, const Cache& cache) const {
  Tensor dx = arena.alloc(cache.x.shape);
  ffn_backward(arena, dy, weights(false), weights(true), cache, dx);
  return dx;
}

}  // namespace mt
