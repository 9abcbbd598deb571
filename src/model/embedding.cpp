// Embedding layer: forward and backward side by side.
#include "model/embedding.hpp"

#include "tensor/ops.hpp"

namespace mt {

Embedding::Embedding(ParamRegistry& reg, int64_t vocab, int64_t seq_len, int64_t d)
    : reg_(reg),
      wte_(reg.add("wte", {vocab, d}, Init::normal(0.02f))),
      wpe_(reg.add("wpe", {seq_len, d}, Init::normal(0.01f))) {}

Tensor Embedding::forward(Arena& arena, const Tensor& tokens) const {
  Tensor x = arena.alloc({tokens.size(0), tokens.size(1), reg_.value(wte_).size(1)});
  ops::embedding_forward(tokens, reg_.value(wte_), reg_.value(wpe_), x);
  return x;
}

void Embedding::backward(const Tensor& tokens, const Tensor& dy) const {
  ops::embedding_backward(tokens, dy, reg_.grad(wte_), reg_.grad(wpe_));
}

}  // namespace mt
