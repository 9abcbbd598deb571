// GPT-2 style decoder (the model contract of DESIGN.md): wte + wpe, N pre-LayerNorm blocks
// x += Attn(LN1(x)); x += FFN(LN2(x)), final LayerNorm lnf, LM head tied to wte.
#pragma once
#include <vector>

#include "model/attention.hpp"
#include "model/embedding.hpp"
#include "model/ffn.hpp"
#include "model/layernorm.hpp"

namespace mt {

struct GptConfig {
  int64_t vocab = 0, seq_len = 128, d_model = 256, n_layer = 4, n_head = 4, d_ff = 1024;
};

class Block {
 public:
  Block(ParamRegistry& reg, const GptConfig& c, int index);
  struct Cache {
    LayerNorm::Cache ln1, ln2;
    Attention::Cache attn;
    Ffn::Cache ffn;
  };
  Tensor forward(Arena& arena, const Tensor& x, Cache& cache) const;
  // dres is the gradient of the block's output; on return it holds the gradient of its input.
  void backward(Arena& arena, const Tensor& dres, const Cache& cache) const;

 private:
  LayerNorm ln1_, ln2_;
  Attention attn_;
  Ffn ffn_;
};

class Gpt {
 public:
  Gpt(const GptConfig& c, ParamRegistry& reg);
  const GptConfig& config() const { return cfg_; }

  // Everything one forward pass leaves for its backward.
  struct Activations {
    Tensor tokens;
    std::vector<Block::Cache> blocks;
    LayerNorm::Cache lnf;
    Tensor xf;  // lnf output
  };
  // tokens [B, T] i32 -> logits [B*T, V].
  Tensor forward(Arena& arena, const Tensor& tokens, Activations& acts) const;
  // Accumulates every parameter gradient from dlogits [B*T, V].
  void backward(Arena& arena, const Tensor& dlogits, const Activations& acts) const;

 private:
  GptConfig cfg_;
  const ParamRegistry& reg_;
  Embedding emb_;
  std::vector<Block> blocks_;
  LayerNorm lnf_;
};

}  // namespace mt
