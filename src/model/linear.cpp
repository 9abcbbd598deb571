// Linear layer: forward and backward side by side.
#include "model/linear.hpp"

#include "tensor/ops.hpp"

namespace mt {

void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  ops::matmul(x, false, w, false, y);
  ops::add_rows(y, b);
}

void linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& dx,
                     const Tensor& dw, const Tensor& db) {
  const ops::SharedBf16Operand shared(dy);  // converted once for its two products
  ops::matmul(dy, false, w, true, dx);
  ops::matmul(x, true, dy, false, dw, 1.0f, 1.0f);
  if (!db.empty()) ops::sum_rows_accumulate(dy, db);
}

Linear::Linear(ParamRegistry& reg, const std::string& prefix, int64_t in, int64_t out,
               float init_std)
    : reg_(reg),
      w_(reg.add(prefix + "/w", {in, out}, Init::normal(init_std))),
      b_(reg.add(prefix + "/b", {out}, Init::zeros())) {}

Tensor Linear::forward(Arena& arena, const Tensor& x, Cache& cache) const {
  Tensor y = arena.alloc(x.shape.with_last(reg_.value(w_).size(1)));
  linear_forward(x, reg_.value(w_), reg_.value(b_), y);
  cache.x = x;
  return y;
}

Tensor Linear::backward(Arena& arena, const Tensor& dy, const Cache& cache) const {
  Tensor dx = arena.alloc(cache.x.shape);
  linear_backward(dy, cache.x, reg_.value(w_), dx, reg_.grad(w_), reg_.grad(b_));
  return dx;
}

}  // namespace mt
