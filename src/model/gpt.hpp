// GPT-2 style decoder (the model contract of docs/design.md): wte + wpe, N pre-LayerNorm blocks
// x += Attn(LN1(x)); x += FFN(LN2(x)), final LayerNorm lnf, LM head tied to wte. With
// moe.experts > 0, every moe.every-th block's FFN is a MoE layer.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "model/attention.hpp"
#include "model/embedding.hpp"
#include "model/ffn.hpp"
#include "model/layernorm.hpp"
#include "model/moe.hpp"

namespace mt {

struct GptConfig {
  int64_t vocab = 0, seq_len = 128, d_model = 256, n_layer = 4, n_head = 4, d_ff = 1024;
  float dropout = 0;  // GPT-2's dropout places (model/dropout.hpp); 0: off
  MoeConfig moe;
  bool is_moe_block(int i) const { return moe.num_experts > 0 && i % moe.every == moe.every - 1; }
};

// Where this rank sits among the ranks that share the experts.
struct ExpertLayout {
  int rank = 0, size = 1;
};

class Block {
 public:
  Block(ParamRegistry& reg, const GptConfig& c, int index, const ExpertLayout& layout,
        const std::vector<int32_t>& hash_table);
  struct Cache {
    LayerNorm::Cache ln1, ln2;
    Attention::Cache attn;
    Ffn::Cache ffn;
    MoeLayer::Cache moe;
    Tensor attn_mask, ffn_mask;  // dropout of the attention and FFN/MoE outputs (empty: none)
  };
  Tensor forward(Arena& arena, const Tensor& x, Cache& cache, const PassContext& pass) const;
  // dres is the gradient of the block's output; on return it holds the gradient of its input.
  void backward(Arena& arena, const Tensor& dres, const Cache& cache,
                const PassContext& pass) const;
  bool is_moe() const { return moe_ != nullptr; }

 private:
  LayerNorm ln1_, ln2_;
  Attention attn_;
  std::unique_ptr<Ffn> ffn_;
  std::unique_ptr<MoeLayer> moe_;
  float dropout_;
};

class Gpt {
 public:
  Gpt(const GptConfig& c, ParamRegistry& reg, const ExpertLayout& layout = {},
      const std::vector<int32_t>& hash_table = {});
  const GptConfig& config() const { return cfg_; }
  const Block& block(int i) const { return blocks_[i]; }

  // Everything one forward pass leaves for its backward.
  struct Activations {
    Tensor tokens;  // on the arena's device
    std::vector<Block::Cache> blocks;
    LayerNorm::Cache lnf;
    Tensor xf;         // lnf output
    Tensor emb_mask;   // the embeddings' dropout (empty: none)
    PassContext pass;  // the pass's context, its routing fields filled in by forward
  };
  // Called after block i with its output x [B, T, d]; it may clear entries of the pass's
  // route.alive (early exits at evaluation), which the later blocks then read.
  using BlockHook = std::function<void(int i, const Tensor& x)>;
  // tokens [B, T] i32 on the host (hash routing reads them there) -> logits [B*T, V] on the
  // arena's device. Where ctx.route.alive is set, a token whose entry is 0 keeps its state
  // through the blocks (its keys and values in them come from that state) and reaches no
  // expert (docs/methods.md §9.6).
  Tensor forward(Arena& arena, const Tensor& tokens, Activations& acts, const PassContext& ctx = {},
                 const BlockHook& after = {}) const;
  // Accumulates every parameter gradient from dlogits [B*T, V] (and the gates' own losses).
  void backward(Arena& arena, const Tensor& dlogits, const Activations& acts) const;
  // This rank's share of the gates' weighted auxiliary and z losses in the last forward.
  double gate_loss(const Activations& acts) const;
  // Block i's output [B, T, d] in a forward's activations (early exits read them).
  Tensor block_output(const Activations& acts, int i) const;
  // The final LayerNorm alone, forward only: the early exits' shared, frozen norm.
  Tensor final_norm(Arena& arena, const Tensor& h) const;
  int wte() const { return emb_.wte(); }

 private:
  GptConfig cfg_;
  const ParamRegistry& reg_;
  Embedding emb_;
  std::vector<Block> blocks_;
  LayerNorm lnf_;
};

}  // namespace mt
