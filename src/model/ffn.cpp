// Dense FFN: forward and backward side by side.
#include "model/ffn.hpp"

#include "tensor/ops.hpp"

namespace mt {

Ffn::Ffn(ParamRegistry& reg, const std::string& prefix, int64_t d, int64_t f, float proj_std)
    : fc1_(reg, prefix + "/fc1", d, f, 0.02f), fc2_(reg, prefix + "/fc2", f, d, proj_std) {}

Tensor Ffn::forward(Arena& arena, const Tensor& x, Cache& cache) const {
  cache.pre = fc1_.forward(arena, x, cache.fc1);
  Tensor act = arena.alloc(cache.pre.shape);
  ops::gelu_forward(cache.pre, act);
  return fc2_.forward(arena, act, cache.fc2);
}

Tensor Ffn::backward(Arena& arena, const Tensor& dy, const Cache& cache) const {
  Tensor dact = fc2_.backward(arena, dy, cache.fc2);
  ops::gelu_backward(cache.pre, dact, dact);
  return fc1_.backward(arena, dact, cache.fc1);
}

}  // namespace mt
