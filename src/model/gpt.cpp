// GPT forward and backward: the loop over blocks, then the same loop in reverse.
#include "model/gpt.hpp"

#include <cmath>
#include <string>

#include "tensor/ops.hpp"

namespace mt {

namespace {
// GPT-2: residual projections scaled down by sqrt(2 * n_layer).
float proj_std(const GptConfig& c) {
  return 0.02f / std::sqrt(2.0f * c.n_layer);
}
std::string block_name(int i) {
  return "blocks/" + std::to_string(i);
}
// The rows t of `from` [N, d] where alive[t] is 0, copied into `to`: an exited token's state.
void keep_exited(const Tensor& from, const Tensor& to, const uint8_t* alive) {
  const int64_t N = from.size(0);
  for (int64_t t = 0, end = 0; t < N; t = end) {
    for (end = t; end < N && !alive[end];) ++end;
    if (end > t) ops::copy(from.rows(t, end), to.rows(t, end));
    end += end < N;
  }
}
}  // namespace

Block::Block(ParamRegistry& reg, const GptConfig& c, int index, const ExpertLayout& layout,
             const std::vector<int32_t>& hash_table)
    : ln1_(reg, block_name(index) + "/ln1", c.d_model),
      ln2_(reg, block_name(index) + "/ln2", c.d_model),
      attn_(reg, block_name(index) + "/attn", c.d_model, int(c.n_head), proj_std(c)),
      dropout_(c.dropout) {
  if (c.is_moe_block(index))
    moe_ = std::make_unique<MoeLayer>(reg, block_name(index) + "/moe", c.d_model,
                                      c.moe.d_ff > 0 ? c.moe.d_ff : c.d_ff, c.moe, layout.rank,
                                      layout.size, proj_std(c), hash_table);
  else
    ffn_ = std::make_unique<Ffn>(reg, block_name(index) + "/ffn", c.d_model, c.d_ff, proj_std(c));
}

Tensor Block::forward(Arena& arena, const Tensor& x, Cache& cache, const PassContext& pass) const {
  // Dropout masks of this pass and block; [B, T, d] outputs start at the rank's first token.
  auto site = [&](const char* purpose) {
    return DropoutSite{dropout_, &pass.route, pass.route.layer, purpose};
  };
  const int64_t first = pass.route.first_token * x.size(-1);
  Tensor a =
      attn_.forward(arena, ln1_.forward(arena, x, cache.ln1), cache.attn, site("attn-probs"));
  cache.attn_mask = dropout_mask(arena, site("attn-out"), x.shape, first);
  a = apply_mask(arena, a, cache.attn_mask);
  Tensor h = ln2_.forward_sum(arena, x, a, cache.ln2);
  const Tensor x1 = cache.ln2.x;  // x + a
  Tensor f =
      moe_ ? moe_->forward(arena, h.view({h.numel() / h.size(-1), h.size(-1)}), pass, cache.moe)
           : ffn_->forward(arena, h, cache.ffn);
  cache.ffn_mask = dropout_mask(arena, site("ffn-out"), f.shape, first);
  f = apply_mask(arena, f, cache.ffn_mask);
  Tensor x2 = arena.alloc(x.shape);
  ops::add(x1, f, x2);
  if (const uint8_t* alive = pass.route.alive) {
    const int64_t N = x.numel() / x.size(-1);
    keep_exited(x.view({N, x.size(-1)}), x2.view({N, x.size(-1)}), alive);
  }
  return x2;
}

void Block::backward(Arena& arena, const Tensor& dres, const Cache& cache,
                     const PassContext& pass) const {
  const Tensor df = apply_mask(arena, dres, cache.ffn_mask);
  const Tensor dh = moe_ ? moe_->backward(arena, df.view({df.numel() / df.size(-1), df.size(-1)}),
                                          pass, cache.moe)
                         : ffn_->backward(arena, df, cache.ffn);
  ln2_.backward(dh, cache.ln2, dres);
  const Tensor da = apply_mask(arena, dres, cache.attn_mask);
  ln1_.backward(attn_.backward(arena, da, cache.attn), cache.ln1, dres);
}

Gpt::Gpt(const GptConfig& c, ParamRegistry& reg, const ExpertLayout& layout,
         const std::vector<int32_t>& hash_table)
    : cfg_(c), reg_(reg), emb_(reg, c.vocab, c.seq_len, c.d_model), lnf_(reg, "lnf", c.d_model) {
  blocks_.reserve(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) blocks_.emplace_back(reg, c, i, layout, hash_table);
}

Tensor Gpt::forward(Arena& arena, const Tensor& tokens, Activations& acts, const PassContext& ctx,
                    const BlockHook& after) const {
  const int64_t B = tokens.size(0), T = tokens.size(1);
  ops::prepare_bf16_weights(reg_.value_buffer().all());
  acts.tokens = arena.to_device(tokens);
  acts.blocks.resize(blocks_.size());
  acts.pass = ctx;
  RouteContext& r = acts.pass.route;
  r.token_ids = tokens.i32();
  r.group_tokens = cfg_.moe.group_sequences * T;
  const int64_t global = ctx.global_sequences > 0 ? ctx.global_sequences : B;
  r.global_groups = global / cfg_.moe.group_sequences;
  r.global_tokens = global * T;
  r.first_token = ctx.first_sequence * T;
  r.seq_len = T;
  Tensor x = emb_.forward(arena, acts.tokens);
  acts.emb_mask = dropout_mask(arena, DropoutSite{cfg_.dropout, &r, 0, "embed"}, x.shape,
                               r.first_token * cfg_.d_model);
  x = apply_mask(arena, x, acts.emb_mask);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    r.layer = int(i);
    x = blocks_[i].forward(arena, x, acts.blocks[i], acts.pass);
    if (after) after(int(i), x);
  }
  acts.xf = lnf_.forward(arena, x, acts.lnf);
  const Tensor wte = reg_.value(emb_.wte());
  Tensor logits = arena.alloc({tokens.numel(), cfg_.vocab});
  ops::matmul(acts.xf, false, wte, true, logits);
  return logits;
}

void Gpt::backward(Arena& arena, const Tensor& dlogits, const Activations& acts) const {
  const Tensor wte = reg_.value(emb_.wte());
  Tensor dxf = arena.alloc(acts.xf.shape);
  {
    const ops::SharedBf16Operand shared(dlogits);  // converted once for its two products
    ops::matmul(dlogits, true, acts.xf, false, reg_.grad(emb_.wte()), 1.0f, 1.0f);
    ops::matmul(dlogits, false, wte, false, dxf);
  }
  Tensor dres = arena.zeros(acts.xf.shape);
  lnf_.backward(dxf, acts.lnf, dres);
  for (size_t i = blocks_.size(); i-- > 0;) {
    const Arena::Scope temporaries(arena);  // dres, updated in place, is all a block leaves
    blocks_[i].backward(arena, dres, acts.blocks[i], acts.pass);
  }
  if (!acts.emb_mask.empty()) ops::mul(dres, acts.emb_mask, dres);
  emb_.backward(acts.tokens, dres);
}

double Gpt::gate_loss(const Activations& acts) const {
  double total = 0;
  for (size_t i = 0; i < blocks_.size(); ++i)
    if (blocks_[i].is_moe()) total += acts.blocks[i].moe.routing.aux + acts.blocks[i].moe.routing.z;
  return total;
}

Tensor Gpt::block_output(const Activations& acts, int i) const {
  return i + 1 < int(blocks_.size()) ? acts.blocks[i + 1].ln1.x : acts.lnf.x;
}

Tensor Gpt::final_norm(Arena& arena, const Tensor& h) const {
  LayerNorm::Cache unused;
  return lnf_.forward(arena, h, unused);
}

}  // namespace mt
