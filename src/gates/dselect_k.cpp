// DSelect-k gate: forward and backward side by side.
#include "gates/dselect_k.hpp"

#include <cmath>
#include <vector>

#include "gates/smooth_step.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"

namespace mt {

namespace {
constexpr float kEps = 1e-6f;  // the authors' log(r + 1e-6); also the penalty's denominator

bool bit(int64_t e, int b, int m) {
  return (e >> (m - 1 - b)) & 1;
}
// r[j * E + e] = prod_b (bit b of e ? s_jb : 1 - s_jb) over bits b != skip, from s [k, m].
void selector_products(const float* s, int64_t k, int64_t E, int m, float* r, int skip = -1) {
  for (int64_t j = 0; j < k; ++j)
    for (int64_t e = 0; e < E; ++e) {
      float p = 1.0f;
      for (int b = 0; b < m; ++b)
        if (b != skip) p *= bit(e, b, m) ? s[j * m + b] : 1.0f - s[j * m + b];
      r[j * E + e] = p;
    }
}
const GateKey kK{
    .name = "dselect.k",
    .value = int64_t(2),
    .help = "DSelect-k: selectors (each picks one expert once its smooth steps saturate)",
    .least = 1};
const GateKey kGamma{.name = "dselect.gamma",
                     .value = 1.0,
                     .help = "DSelect-k: smooth-step width gamma",
                     .above = 0};
const GateKey kEntropy{.name = "dselect.entropy",
                       .value = 0.1,
                       .help = "DSelect-k: weight of the selectors' entropy regulariser",
                       .least = 0};
}  // namespace

const std::vector<GateKey>& DSelectKGate::keys() {
  static const std::vector<GateKey> k = {kK, kGamma, kEntropy};
  return k;
}

DSelectKConfig DSelectKGate::config(int num_experts, const GateKeys& keys) {
  return {num_experts, int(keys.integer(kK)), keys.number(kGamma), keys.number(kEntropy)};
}

DSelectKGate::DSelectKGate(ParamRegistry& reg, const std::string& prefix, int64_t d,
                           const DSelectKConfig& c)
    : reg_(reg), cfg_(c), bits_(0) {
  MT_CHECK(c.num_experts >= 2 && c.k >= 1 && c.gamma > 0,
           "dselect_k: {} experts, k = {}, gamma = {} (at least 2 experts, k >= 1, gamma > 0)",
           c.num_experts, c.k, c.gamma);
  while ((int64_t(1) << bits_) < c.num_experts) ++bits_;
  const float z_init = float(c.gamma / 100);  // the authors' U(-gamma/100, gamma/100)
  wz_ = reg.add(prefix + "/z/w", {d, c.k * bits_}, Init::uniform(z_init));
  bz_ = reg.add(prefix + "/z/b", {c.k * bits_}, Init::uniform(z_init));
  wa_ = reg.add(prefix + "/alpha/w", {d, c.k}, Init::uniform(0.05f));  // Keras RandomUniform()
  ba_ = reg.add(prefix + "/alpha/b", {c.k}, Init::uniform(0.05f));
}

Routing DSelectKGate::route(Arena& arena, const Tensor& x, const RouteContext& ctx) const {
  const int64_t T = x.size(0), E = cfg_.num_experts, k = cfg_.k, m = bits_;
  const float gamma = float(cfg_.gamma);
  const Tensor hz = router_logits(arena, x, reg_.value(wz_));
  const Tensor ha = router_logits(arena, x, reg_.value(wa_));
  const float *bz = arena.to_host(reg_.value(bz_)).f32(),
              *ba = arena.to_host(reg_.value(ba_)).f32();
  Routing r = every_expert(arena, T, int(E), ctx);
  r.x = x;
  r.probs = arena.host().alloc({T, k});      // alpha
  r.saved = arena.host().alloc({T, k * m});  // z
  const bool power_of_two = (int64_t(1) << m) == E;
  std::vector<float> s(k * m), rj(k * E);
  double entropy = 0, penalty = 0;
  for (int64_t t = 0; t < T; ++t) {
    float *z = r.saved.f32() + t * k * m, *alpha = r.probs.f32() + t * k;
    for (int64_t i = 0; i < k * m; ++i) {
      z[i] = hz.f32()[t * k * m + i] + bz[i];
      s[i] = smooth_step(z[i], gamma);
    }
    for (int64_t j = 0; j < k; ++j) alpha[j] = ha.f32()[t * k + j] + ba[j];
    softmax_row(alpha, k);
    selector_products(s.data(), k, E, int(m), rj.data());
    for (int64_t e = 0; e < E; ++e) {
      float w = 0;
      for (int64_t j = 0; j < k; ++j) w += alpha[j] * rj[j * E + e];
      r.weight.f32()[t * E + e] = w;
    }
    if (!ctx.training) continue;
    for (int64_t j = 0; j < k; ++j) {
      double mass = 0;
      for (int64_t e = 0; e < E; ++e) {
        const float v = rj[j * E + e];
        entropy -= double(v) * std::log(v + kEps);
        mass += v;
      }
      if (!power_of_two) penalty += 1.0 / (mass + kEps);
    }
  }
  mark_nonzero(r);
  r.aux = (cfg_.entropy_weight * entropy + penalty) / double(ctx.global_tokens);
  return r;
}

void DSelectKGate::backward(Arena& arena, const Routing& r, const Tensor& dweight,
                            const Tensor& dx) const {
  const int64_t T = r.x.size(0), E = cfg_.num_experts, k = cfg_.k, m = bits_;
  const float gamma = float(cfg_.gamma);
  const bool power_of_two = (int64_t(1) << m) == E, training = r.ctx.training;
  const float scale = 1.0f / float(r.ctx.global_tokens), lambda = float(cfg_.entropy_weight);
  Tensor dz = arena.host().alloc({T, k * m}), du = arena.host().alloc({T, k});
  Tensor dbz = arena.host().zeros({k * m}), dba = arena.host().zeros({k});
  std::vector<float> s(k * m), rj(k * E), dr(k * E), partial(k * E), dalpha(k);
  for (int64_t t = 0; t < T; ++t) {
    const float *z = r.saved.f32() + t * k * m, *alpha = r.probs.f32() + t * k;
    for (int64_t i = 0; i < k * m; ++i) s[i] = smooth_step(z[i], gamma);
    selector_products(s.data(), k, E, int(m), rj.data());
    // An expert that did not run has w_e = 0 where every S' is 0, and dw_e = 0.
    const float* dw = dweight.f32() + t * E;
    for (int64_t j = 0; j < k; ++j) {
      dalpha[j] = 0;
      double mass = 0;
      for (int64_t e = 0; e < E; ++e) mass += rj[j * E + e];
      const float dmass =
          training && !power_of_two ? -scale / float((mass + kEps) * (mass + kEps)) : 0.0f;
      for (int64_t e = 0; e < E; ++e) {
        const float v = rj[j * E + e], g = dw[e];
        dalpha[j] += g * v;
        dr[j * E + e] = alpha[j] * g + dmass;
        if (training) dr[j * E + e] -= lambda * scale * (std::log(v + kEps) + v / (v + kEps));
      }
    }
    float* dzt = dz.f32() + t * k * m;
    for (int b = 0; b < m; ++b) {
      selector_products(s.data(), k, E, int(m), partial.data(), b);
      for (int64_t j = 0; j < k; ++j) {
        float ds = 0;
        for (int64_t e = 0; e < E; ++e)
          ds += dr[j * E + e] * (bit(e, b, int(m)) ? partial[j * E + e] : -partial[j * E + e]);
        dzt[j * m + b] = ds * smooth_step_grad(z[j * m + b], gamma);
        dbz.f32()[j * m + b] += dzt[j * m + b];
      }
    }
    float dot = 0;
    for (int64_t j = 0; j < k; ++j) dot += alpha[j] * dalpha[j];
    for (int64_t j = 0; j < k; ++j) {
      du.f32()[t * k + j] = alpha[j] * (dalpha[j] - dot);
      dba.f32()[j] += du.f32()[t * k + j];
    }
  }
  ops::add(reg_.grad(bz_), arena.to_device(dbz), reg_.grad(bz_));
  ops::add(reg_.grad(ba_), arena.to_device(dba), reg_.grad(ba_));
  router_backward(arena, r.x, dz, reg_.value(wz_), reg_.grad(wz_), dx);
  router_backward(arena, r.x, du, reg_.value(wa_), reg_.grad(wa_), dx);
}

}  // namespace mt
