// Linear layer: forward and backward side by side.
#include "model/linear.hpp"

#include "tensor/ops.hpp"

namespace mt {

Linear::Linear(ParamRegistry& reg, const std::string& prefix, int64_t in, int64_t out,
               float init_std)
    : reg_(reg),
      w_(reg.add(prefix + "/w", {in, out}, Init::normal(init_std))),
      b_(reg.add(prefix + "/b", {out}, Init::zeros())) {}

Tensor Linear::forward(Arena& arena, const Tensor& x, Cache& cache) const {
  const Tensor w = reg_.value(w_);
  Tensor y = arena.alloc(x.shape.with_last(w.size(1)));
  ops::matmul(x, false, w, false, y);
  ops::add_rows(y, reg_.value(b_));
  cache.x = x;
  return y;
}

Tensor Linear::backward(Arena& arena, const Tensor& dy, const Cache& cache) const {
  const Tensor w = reg_.value(w_);
  Tensor dx = arena.alloc(cache.x.shape);
  ops::matmul(dy, false, w, true, dx);
  ops::matmul(cache.x, true, dy, false, reg_.grad(w_), 1.0f, 1.0f);
  ops::sum_rows_accumulate(dy, reg_.grad(b_));
  return dx;
}

}  // namespace mt
