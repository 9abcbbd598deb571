// Text generation: the sampling rule and the token-by-token loop.
#include "train/generate.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tensor/error.hpp"
#include "tensor/rng.hpp"

namespace mt {

int32_t pick_token(const float* z, int64_t V, double temperature, int64_t top_k, float u) {
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  const int64_t k = temperature == 0 ? 1 : top_k > 0 ? std::min(top_k, V) : V;
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); });
  if (k == 1) return order[0];
  std::vector<double> p(k);
  double total = 0;
  for (int64_t i = 0; i < k; ++i)
    total += p[i] = std::exp((double(z[order[i]]) - z[order[0]]) / temperature);
  double sum = 0;
  for (int64_t i = 0; i < k; ++i)
    if ((sum += p[i]) > double(u) * total) return order[i];
  return order[k - 1];
}

Generated generate(const Gpt& model, const Runtime& rt, const PassContext& base,
                   const std::vector<int32_t>& prompt, const GenerateConfig& g) {
  const GptConfig& c = model.config();
  MT_CHECK(!prompt.empty(), "generate: the prompt holds no token");
  // Rows of one capacity group, all the same sequence (a MoE layer's groups divide the batch).
  const int64_t rows = c.moe.group_sequences;
  const Rng draws(g.seed, stream_id({name_hash("generate")}));
  std::vector<int32_t> ids = prompt;
  Generated out;
  Arena arena(rt.device);
  Gpt::Activations acts;
  for (int64_t n = 0; n < g.tokens; ++n) {
    arena.reset();
    const int64_t L = std::min<int64_t>(int64_t(ids.size()), c.seq_len);
    Tensor tokens = arena.host().alloc({rows, L}, DType::I32);
    for (int64_t r = 0; r < rows; ++r) std::copy(ids.end() - L, ids.end(), tokens.i32() + r * L);
    PassContext ctx = base;
    ctx.a2a = rt.a2a.get();
    ctx.route.training = false;
    ctx.route.step = int64_t(ids.size());  // keys THOR's evaluation draws
    ctx.global_sequences = rows * rt.ranks();
    ctx.first_sequence = rows * rt.rank();
    const Tensor logits = arena.to_host(model.forward(arena, tokens, acts, ctx));
    const float* z = logits.f32() + (L - 1) * c.vocab;
    int32_t next =
        pick_token(z, c.vocab, g.temperature, g.top_k, draws.uniform(uint64_t(ids.size())));
    rt.groups.world->broadcast(&next, sizeof next, 0);  // every rank goes on with rank 0's pick
    const float top = *std::max_element(z, z + c.vocab);
    double sum = 0;
    for (int64_t v = 0; v < c.vocab; ++v) sum += std::exp(double(z[v]) - top);
    ids.push_back(next);
    out.ids.push_back(next);
    out.logprobs.push_back(double(z[next]) - top - std::log(sum));
  }
  return out;
}

}  // namespace mt
