// Dense feed-forward block: fc1 (d -> f), GELU (tanh form), fc2 (f -> d).
#pragma once
#include <string>

#include "model/linear.hpp"

namespace mt {

class Ffn {
 public:
  Ffn(ParamRegistry& reg, const std::string& prefix, int64_t d, int64_t f, float proj_std);
  struct Cache {
    Linear::Cache fc1, fc2;
    Tensor pre;  // fc1 output, the GELU input
  };
  Tensor forward(Arena& arena, const Tensor& x, Cache& cache) const;
  Tensor backward(Arena& arena, const Tensor& dy, const Cache& cache) const;  // returns dx

 private:
  Linear fc1_, fc2_;
};

}  // namespace mt
