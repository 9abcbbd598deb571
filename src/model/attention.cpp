// Attention layer: forward and backward side by side.
#include "model/attention.hpp"

#include "tensor/ops.hpp"

namespace mt {

Attention::Attention(ParamRegistry& reg, const std::string& prefix, int64_t d, int n_head,
                     float proj_std)
    : qkv_(reg, prefix + "/qkv", d, 3 * d, 0.02f),
      proj_(reg, prefix + "/proj", d, d, proj_std),
      n_head_(n_head) {}

Tensor Attention::forward(Arena& arena, const Tensor& x, Cache& cache,
                          const DropoutSite& probs_dropout) const {
  const int64_t B = x.size(0), T = x.size(1);
  cache.qkv_out = qkv_.forward(arena, x, cache.qkv);
  cache.probs = arena.alloc({B, n_head_, T, T});
  // Element (b, h, i, j) of the global batch's probabilities: sequences are the outer dimension.
  const int64_t first =
      probs_dropout.active() ? probs_dropout.pass->first_token / T * (n_head_ * T * T) : 0;
  cache.mask = dropout_mask(arena, probs_dropout, cache.probs.shape, first);
  cache.dropped = cache.mask.empty() ? Tensor{} : arena.alloc(cache.probs.shape);
  Tensor att = arena.alloc(x.shape);
  ops::attention_forward(cache.qkv_out, n_head_, att, cache.probs, cache.mask, cache.dropped);
  return proj_.forward(arena, att, cache.proj);
}

Tensor Attention::backward(Arena& arena, const Tensor& dy, const Cache& cache) const {
  Tensor datt = proj_.backward(arena, dy, cache.proj);
  Tensor dqkv = arena.alloc(cache.qkv_out.shape);
  Tensor scratch = arena.alloc(cache.probs.shape);
  ops::attention_backward(datt, cache.qkv_out, cache.probs, n_head_, dqkv, scratch, cache.mask,
                          cache.dropped);
  return qkv_.backward(arena, dqkv, cache.qkv);
}

}  // namespace mt
