// LayerNorm layer: forward and backward side by side.
#include "model/layernorm.hpp"

#include "tensor/ops.hpp"

namespace mt {

LayerNorm::LayerNorm(ParamRegistry& reg, const std::string& prefix, int64_t d)
    : reg_(reg),
      gamma_(reg.add(prefix + "/gamma", {d}, Init::ones())),
      beta_(reg.add(prefix + "/beta", {d}, Init::zeros())) {}

Tensor LayerNorm::forward(Arena& arena, const Tensor& x, Cache& cache) const {
  const int64_t rows = x.numel() / x.size(-1);
  Tensor y = arena.alloc(x.shape);
  cache.x = x;
  cache.mean = arena.alloc({rows});
  cache.rstd = arena.alloc({rows});
  ops::layernorm_forward(x, reg_.value(gamma_), reg_.value(beta_), y, cache.mean, cache.rstd);
  return y;
}

Tensor LayerNorm::forward_sum(Arena& arena, const Tensor& x, const Tensor& a, Cache& cache) const {
  const int64_t rows = x.numel() / x.size(-1);
  Tensor y = arena.alloc(x.shape);
  cache.x = arena.alloc(x.shape);
  cache.mean = arena.alloc({rows});
  cache.rstd = arena.alloc({rows});
  ops::add_layernorm_forward(x, a, cache.x, reg_.value(gamma_), reg_.value(beta_), y, cache.mean,
                             cache.rstd);
  return y;
}

void LayerNorm::backward(const Tensor& dy, const Cache& cache, const Tensor& dx) const {
  ops::layernorm_backward(dy, cache.x, reg_.value(gamma_), cache.mean, cache.rstd, dx,
                          reg_.grad(gamma_), reg_.grad(beta_));
}

}  // namespace mt
