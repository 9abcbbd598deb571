// EvoMoE gate: forward and backward side by side.
#include "gates/evomoe.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/rng.hpp"

namespace mt {

EvoGate::EvoGate(ParamRegistry& reg, const std::string& prefix, int64_t d, const EvoGateConfig& c)
    : reg_(reg), w_(reg.add(prefix + "/w", {d, c.num_experts}, Init::normal(0.02f))), cfg_(c) {}

Routing EvoGate::route(Arena& arena, const Tensor& x, const RouteContext& ctx) const {
  const int64_t T = x.size(0), E = cfg_.num_experts, G = ctx.group_tokens;
  if (ctx.phase == 0) {
    Routing r = one_choice(arena, T, int(E), ctx);
    r.constant = true;  // the gate gets no gradient; the tokens still travel to expert 0
    for (int64_t t = 0; t < T; ++t) r.expert.i32()[t] = 0;
    count_load(r);
    return r;
  }
  const bool noisy = ctx.training;  // Gumbel noise and the annealed gate in training only
  const bool soft = noisy && ctx.phase == 1;
  const Tensor h = router_logits(arena, x, reg_.value(w_));
  Routing r;
  r.ctx = ctx;
  r.k = soft ? int(E) : 1;  // soft: column j is expert j (-1 where inactive)
  r.x = x;
  r.load.assign(E, 0);
  r.expert = arena.host().alloc({T, r.k}, DType::I32);
  r.weight = arena.host().alloc({T, r.k});
  r.frac = arena.host().zeros({T / G, E});  // ce: each group's fraction of tokens activating e
  // r.probs: the distribution the combine weights come from (softmax(h), or g).
  const bool gumbel_weights = noisy && cfg_.gumbel_weights;
  r.probs = arena.host().alloc({T, E});
  Tensor g = gumbel_weights ? r.probs : arena.host().alloc({T, E});
  const Rng gumbel(ctx.seed,
                   stream_id({name_hash("dts-gumbel"), uint64_t(ctx.step), uint64_t(ctx.layer)}));
  const float* hv = h.f32();
  float *q = r.probs.f32(), *gv = g.f32(), *w = r.weight.f32();
  int32_t* e = r.expert.i32();
  for (int64_t t = 0; t < T; ++t) {
    const float* ht = hv + t * E;
    float *qt = q + t * E, *gt = gv + t * E;
    for (int64_t j = 0; j < E; ++j) {
      const float noise =
          noisy ? -std::log(-std::log(gumbel.uniform(uint64_t((ctx.first_token + t) * E + j))))
                : 0.0f;
      gt[j] = (ht[j] + noise) / (noisy ? ctx.tau : 1.0f);
    }
    softmax_row(gt, E);
    if (!gumbel_weights) {  // qt is gt with Gumbel weights
      for (int64_t j = 0; j < E; ++j) qt[j] = ht[j];
      softmax_row(qt, E);
    }
    int64_t best = 0;
    for (int64_t j = 1; j < E; ++j)
      if (gt[j] > gt[best]) best = j;
    if (!soft) {
      e[t] = int32_t(best), w[t] = qt[best];
      ++r.load[best];
      continue;
    }
    int64_t active = 0;
    for (int64_t j = 0; j < E; ++j) {
      const bool on = gt[j] > cfg_.threshold;
      e[t * E + j] = on ? int32_t(j) : -1;
      w[t * E + j] = on ? qt[j] : 0.0f;
      active += on;
    }
    if (active == 0) e[t * E + best] = int32_t(best), w[t * E + best] = qt[best];
    for (int64_t j = 0; j < E; ++j) r.load[j] += e[t * E + j] >= 0;
  }
  // Balance loss over the active experts' weights (me) and token fractions (ce).
  std::vector<double> me(T / G * E, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < r.k; ++c)
      if (const int32_t j = e[t * r.k + c]; j >= 0)
        r.frac.f32()[(t / G) * E + j] += 1.0f / float(G), me[(t / G) * E + j] += w[t * r.k + c];
  r.aux = balance_loss(r.frac, me, cfg_.aux_weight, G, ctx.global_groups);
  return r;
}

void EvoGate::backward(Arena& arena, const Routing& r, const Tensor& dweight,
                       const Tensor& dx) const {
  if (r.constant) return;
  const int64_t T = r.x.size(0), E = cfg_.num_experts, G = r.ctx.group_tokens, k = r.k;
  const float *dw = dweight.f32(), *ce = r.frac.f32();
  const int32_t* e = r.expert.i32();
  Tensor dq = arena.host().zeros({T, E});  // the loss gradient of r.probs
  float* d = dq.f32();
  const float aux_scale = balance_scale(cfg_.aux_weight, E, G, r.ctx.global_groups);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < k; ++c)
      if (const int32_t j = e[t * k + c]; j >= 0)
        d[t * E + j] += dw[t * k + c] + aux_scale * ce[(t / G) * E + j];
  // Through the softmax; g = softmax(u) with u = (h + G) / tau also divides by tau.
  const bool gumbel_weights = r.ctx.training && cfg_.gumbel_weights;
  softmax_rows_backward(r.probs, dq, gumbel_weights ? 1.0f / r.ctx.tau : 1.0f);
  router_backward(arena, r.x, dq, reg_.value(w_), reg_.grad(w_), dx);
}

}  // namespace mt
