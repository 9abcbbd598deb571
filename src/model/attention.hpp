// Causal multi-head self-attention: qkv projection, attention, output projection.
#pragma once
#include <string>

#include "model/dropout.hpp"
#include "model/linear.hpp"

namespace mt {

class Attention {
 public:
  Attention(ParamRegistry& reg, const std::string& prefix, int64_t d, int n_head, float proj_std);
  struct Cache {
    Linear::Cache qkv, proj;
    Tensor qkv_out, probs;
    Tensor mask, dropped;  // attention-probability dropout (empty without)
  };
  // probs_dropout: where the probabilities' dropout mask is drawn (inactive: none).
  Tensor forward(Arena& arena, const Tensor& x, Cache& cache,
                 const DropoutSite& probs_dropout = {}) const;
  Tensor backward(Arena& arena, const Tensor& dy, const Cache& cache) const;  // returns dx

 private:
  Linear qkv_, proj_;
  int n_head_;
};

}  // namespace mt
