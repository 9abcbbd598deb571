// EvoMoE gate: forward and backward side by side, per phase.
#include "gates/evomoe.hpp"

#include <cmath>

#include "tensor/rng.hpp"

namespace mt {

EvoGate::EvoGate(ParamRegistry& reg, const std::string& prefix, int64_t d, int num_experts,
                 double threshold, double aux_weight)
    : reg_(reg),
      top1_(reg, prefix, d, {1, num_experts, 1.0, 1.0, /*dropless=*/true, aux_weight, 0.0}),
      num_experts_(num_experts),
      threshold_(threshold),
      aux_weight_(aux_weight) {}

Routing EvoGate::route(Arena& arena, const Tensor& x, const RouteContext& ctx) const {
  if (ctx.phase == 2) return top1_.route(arena, x, ctx);
  const int64_t T = x.size(0), E = num_experts_;
  if (ctx.phase == 0) {
    Routing r = one_choice(arena, T, int(E), ctx);
    r.constant = true;  // the gate gets no gradient; the tokens still travel to expert 0
    for (int64_t t = 0; t < T; ++t) r.expert.i32()[t] = 0;
    count_load(r);
    return r;
  }
  Routing r;
  r.ctx = ctx;
  r.load.assign(E, 0);
  // Dense-to-Sparse: column e of [T, E] is expert e, -1 where inactive.
  r.k = int(E);
  r.x = x;
  r.probs = router_logits(arena, x, reg_.value(top1_.weight_index()));  // becomes the gate values g
  r.expert = arena.host().alloc({T, E}, DType::I32);
  r.weight = arena.host().alloc({T, E});
  const int64_t G = ctx.group_tokens;
  r.frac = arena.host().zeros({T / G, E});  // each group's share of active pairs per expert
  const Rng gumbel(ctx.seed,
                   stream_id({name_hash("dts-gumbel"), uint64_t(ctx.step), uint64_t(ctx.layer)}));
  float *g = r.probs.f32(), *w = r.weight.f32();
  int32_t* e = r.expert.i32();
  for (int64_t t = 0; t < T; ++t) {
    float* row = g + t * E;
    for (int64_t j = 0; j < E; ++j) {
      const float noise =
          ctx.training
              ? -std::log(-std::log(gumbel.uniform(uint64_t((ctx.first_token + t) * E + j))))
              : 0.0f;
      row[j] = (row[j] + noise) / ctx.tau;
    }
    float mx = row[0];
    for (int64_t j = 1; j < E; ++j) mx = std::max(mx, row[j]);
    float s = 0;
    for (int64_t j = 0; j < E; ++j) s += (row[j] = std::exp(row[j] - mx));
    int64_t best = 0, active = 0;
    for (int64_t j = 0; j < E; ++j) {
      row[j] /= s;
      if (row[j] > row[best]) best = j;
      const bool on = row[j] > threshold_;
      e[t * E + j] = on ? int32_t(j) : -1;
      w[t * E + j] = row[j];
      active += on;
    }
    if (active == 0) e[t * E + best] = int32_t(best), active = 1;
    for (int64_t j = 0; j < E; ++j)
      if (e[t * E + j] >= 0) ++r.load[j];
  }
  // Balance loss per capacity group: alpha E sum_e f_e P_e, f over the group's active pairs, P the
  // group's mean gate value; averaged over the global batch's groups.
  double aux = 0;
  for (int64_t g0 = 0; g0 < T; g0 += G) {
    float* f = r.frac.f32() + (g0 / G) * E;
    int64_t pairs = 0;
    for (int64_t t = g0; t < g0 + G; ++t)
      for (int64_t j = 0; j < E; ++j) pairs += e[t * E + j] >= 0;
    for (int64_t j = 0; j < E; ++j) {
      int64_t on = 0;
      double P = 0;
      for (int64_t t = g0; t < g0 + G; ++t) on += e[t * E + j] >= 0, P += g[t * E + j];
      f[j] = float(double(on) / double(pairs));
      aux += double(f[j]) * P / double(G);
    }
  }
  r.aux = aux_weight_ * E * aux / double(ctx.global_groups);
  return r;
}

void EvoGate::backward(Arena& arena, const Routing& r, const Tensor& dweight,
                       const Tensor& dx) const {
  if (r.constant) return;
  if (r.ctx.phase == 2) return top1_.backward(arena, r, dweight, dx);
  const int64_t T = r.x.size(0), E = num_experts_;
  const float *g = r.probs.f32(), *dw = dweight.f32(), *frac = r.frac.f32();
  const int32_t* e = r.expert.i32();
  Tensor dh = arena.host().alloc({T, E});
  float* d = dh.f32();
  const int64_t G = r.ctx.group_tokens;
  const float aux_scale = float(aux_weight_ * E / (double(G) * double(r.ctx.global_groups)));
  for (int64_t t = 0; t < T; ++t) {
    const float* row = g + t * E;
    float* dg = d + t * E;
    for (int64_t j = 0; j < E; ++j)
      dg[j] = (e[t * E + j] >= 0 ? dw[t * E + j] : 0.0f) + aux_scale * frac[(t / G) * E + j];
    // g = softmax(u), u = (h + G) / tau: dh = (g * (dg - sum g dg)) / tau.
    float dot = 0;
    for (int64_t j = 0; j < E; ++j) dot += row[j] * dg[j];
    for (int64_t j = 0; j < E; ++j) dg[j] = row[j] * (dg[j] - dot) / r.ctx.tau;
  }
  const int w = top1_.weight_index();
  router_backward(arena, r.x, dh, reg_.value(w), reg_.grad(w), dx);
}

}  // namespace mt
