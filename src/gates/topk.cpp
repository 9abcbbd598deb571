// Softmax top-k router: forward (routing, capacity, losses) and backward side by side.
#include "gates/topk.hpp"

#include <cmath>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/rng.hpp"

namespace mt {

TopKGate::TopKGate(ParamRegistry& reg, const std::string& prefix, int64_t d, const TopKConfig& c)
    : reg_(reg), w_(reg.add(prefix + "/w", {d, c.num_experts}, Init::normal(0.02f))), cfg_(c) {
  MT_CHECK(c.k == 1 || c.k == 2, "top-k gate: k = {} (1: Switch, 2: GShard)", c.k);
  MT_CHECK(c.k <= c.num_experts, "top-k gate: k = {} with {} experts", c.k, c.num_experts);
}

void TopKGate::softmax(Arena& arena, const Tensor& x, Routing& r) const {
  const int64_t T = x.size(0), E = cfg_.num_experts;
  r.probs = router_logits(arena, x, reg_.value(w_));
  r.lse = arena.host().alloc({T});
  for (int64_t t = 0; t < T; ++t) r.lse.f32()[t] = softmax_row(r.probs.f32() + t * E, E);
}

Routing TopKGate::route_local(Arena& arena, const Tensor& x, const RouteContext& ctx, int first,
                              int count, bool gate_weight) const {
  const int64_t T = x.size(0), E = cfg_.num_experts;
  Routing r = one_choice(arena, T, int(E), ctx);
  r.constant = true;
  softmax(arena, x, r);
  for (int64_t t = 0; t < T; ++t) {
    const float* row = r.probs.f32() + t * E;
    int32_t best = first;
    for (int32_t j = first + 1; j < first + count; ++j)
      if (row[j] > row[best]) best = j;
    r.expert.i32()[t] = best;
    if (gate_weight) r.weight.f32()[t] = row[best];
  }
  count_load(r);
  return r;
}

Routing TopKGate::route(Arena& arena, const Tensor& x, const RouteContext& ctx) const {
  const int64_t T = x.size(0), E = cfg_.num_experts, k = cfg_.k, G = ctx.group_tokens;
  MT_CHECK(G > 0 && T % G == 0, "gate: {} tokens are not whole groups of {}", T, G);
  Routing r;
  r.k = int(k);
  r.ctx = ctx;
  r.x = x;
  softmax(arena, x, r);
  r.expert = arena.host().alloc({T, k}, DType::I32);
  r.choice = arena.host().alloc({T, k}, DType::I32);
  r.weight = arena.host().alloc({T, k});
  r.frac = arena.host().zeros({T / G, E});
  r.load.assign(E, 0);
  float *p = r.probs.f32(), *lse = r.lse.f32(), *w = r.weight.f32(), *frac = r.frac.f32();
  int32_t *e = r.expert.i32(), *c = r.choice.i32();
  const Rng second(
      ctx.seed, stream_id({name_hash("gshard-second"), uint64_t(ctx.step), uint64_t(ctx.layer)}));
  double z = 0;
  for (int64_t t = 0; t < T; ++t) {
    const float* row = p + t * E;
    z += double(lse[t]) * lse[t];
    int32_t e1 = 0;
    for (int32_t j = 1; j < E; ++j)
      if (row[j] > row[e1]) e1 = j;
    c[t * k] = e[t * k] = e1;
    frac[(t / G) * E + e1] += 1.0f / float(G);
    ++r.load[e1];
    if (k == 1) {
      w[t] = row[e1];
      continue;
    }
    int32_t e2 = e1 == 0 ? 1 : 0;
    for (int32_t j = 0; j < E; ++j)
      if (j != e1 && row[j] > row[e2]) e2 = j;
    const float sum = row[e1] + row[e2];
    w[t * 2] = row[e1] / sum;
    w[t * 2 + 1] = row[e2] / sum;
    c[t * 2 + 1] = e2;
    // GShard's random routing: in training the second expert is kept with probability 2 g2.
    const bool keep =
        !ctx.training || second.uniform(uint64_t(ctx.first_token + t)) < 2.0f * w[t * 2 + 1];
    e[t * 2 + 1] = keep ? e2 : -1;
  }
  const double cf = ctx.training ? cfg_.capacity_factor : cfg_.eval_capacity_factor;
  r.dropped = apply_capacity(r.expert, int(E), G,
                             expert_capacity(cf, int(k), G, int(E), cfg_.dropless), ctx.alive);
  // Switch's aux loss over the router probabilities.
  std::vector<double> mass(T / G * E, 0.0);
  for (int64_t g = 0; g < T / G; ++g)
    for (int64_t j = 0; j < E; ++j)
      for (int64_t t = g * G; t < (g + 1) * G; ++t) mass[g * E + j] += p[t * E + j];
  r.aux = balance_loss(r.frac, mass, cfg_.aux_weight, G, ctx.global_groups);
  r.z = cfg_.z_weight * z / double(ctx.global_tokens);
  return r;
}

void TopKGate::backward(Arena& arena, const Routing& r, const Tensor& dweight,
                        const Tensor& dx) const {
  if (r.constant) return;  // Gating Dropout: the weights were constants
  const int64_t T = r.x.size(0), E = cfg_.num_experts, k = cfg_.k, G = r.ctx.group_tokens;
  const float *p = r.probs.f32(), *lse = r.lse.f32(), *dw = dweight.f32(), *frac = r.frac.f32();
  const int32_t* c = r.choice.i32();
  Tensor dh = arena.host().alloc({T, E});
  float* d = dh.f32();
  const float aux_scale = balance_scale(cfg_.aux_weight, E, G, r.ctx.global_groups);
  const float z_scale = float(2.0 * cfg_.z_weight / double(r.ctx.global_tokens));
  for (int64_t t = 0; t < T; ++t) {
    const float* row = p + t * E;
    float* dp = d + t * E;
    // Gradient w.r.t. the probabilities: the aux loss, then the combine weights.
    for (int64_t j = 0; j < E; ++j) dp[j] = aux_scale * frac[(t / G) * E + j];
    const float dw1 = dw[t * k];  // 0 for a choice capacity dropped
    if (k == 1) {
      dp[c[t]] += dw1;
    } else {
      const float dw2 = dw[t * 2 + 1];
      const int32_t c1 = c[t * 2], c2 = c[t * 2 + 1];
      const float p1 = row[c1], p2 = row[c2], s2 = (p1 + p2) * (p1 + p2);
      // w1 = p1 / (p1 + p2), w2 = p2 / (p1 + p2)
      dp[c1] += (dw1 - dw2) * p2 / s2;
      dp[c2] += (dw2 - dw1) * p1 / s2;
    }
    // Through the softmax, plus the z-loss: d/dh (lse^2) = 2 lse p (one expression, as the
    // recorded runs computed it).
    float dot = 0;
    for (int64_t j = 0; j < E; ++j) dot += row[j] * dp[j];
    for (int64_t j = 0; j < E; ++j) dp[j] = row[j] * (dp[j] - dot) + z_scale * lse[t] * row[j];
  }
  router_backward(arena, r.x, dh, reg_.value(w_), reg_.grad(w_), dx);
}

}  // namespace mt
