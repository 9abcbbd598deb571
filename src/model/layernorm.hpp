// LayerNorm with learned gain and bias (eps 1e-5).
#pragma once
#include <string>

#include "tensor/arena.hpp"
#include "tensor/params.hpp"

namespace mt {

class LayerNorm {
 public:
  LayerNorm(ParamRegistry& reg, const std::string& prefix, int64_t d);
  struct Cache {
    Tensor x, mean, rstd;
  };
  Tensor forward(Arena& arena, const Tensor& x, Cache& cache) const;
  // The same of the residual sum x + a, which it writes to cache.x in the same pass.
  Tensor forward_sum(Arena& arena, const Tensor& x, const Tensor& a, Cache& cache) const;
  // Accumulates into dx (the residual stream's gradient) and into dgamma, dbeta.
  void backward(const Tensor& dy, const Cache& cache, const Tensor& dx) const;

 private:
  const ParamRegistry& reg_;
  int gamma_, beta_;
};

}  // namespace mt
