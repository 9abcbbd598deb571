// Token embedding wte [V, d] plus learned positions wpe [T, d].
#pragma once
#include "tensor/arena.hpp"
#include "tensor/params.hpp"

namespace mt {

class Embedding {
 public:
  Embedding(ParamRegistry& reg, int64_t vocab, int64_t seq_len, int64_t d);
  Tensor forward(Arena& arena, const Tensor& tokens) const;
  void backward(const Tensor& tokens, const Tensor& dy) const;  // accumulates dwte, dwpe
  int wte() const { return wte_; }

 private:
  const ParamRegistry& reg_;
  int wte_, wpe_;
};

}  // namespace mt
