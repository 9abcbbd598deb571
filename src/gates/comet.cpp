// COMET gate: forward and backward side by side.
#include "gates/comet.hpp"

#include <cmath>
#include <limits>

#include "gates/smooth_step.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"

namespace mt {

namespace {
constexpr float kLogEps = 1e-8f;      // the authors' log(pi + 1e-8) at the leaves
constexpr float kEntropyEps = 1e-6f;  // and their regulariser's log(pi + 1e-6)

const GateKey kK{.name = "comet.k",
                 .value = int64_t(2),
                 .help = "COMET: trees (each routes to one leaf once its smooth steps saturate)",
                 .least = 1};
const GateKey kGamma{
    .name = "comet.gamma", .value = 1.0, .help = "COMET: smooth-step width gamma", .above = 0};
const GateKey kEntropy{.name = "comet.entropy",
                       .value = 0.1,
                       .help = "COMET: weight of the leaves' entropy regulariser",
                       .least = 0};

// Leaf nodes in left-to-right order from node i down: the expert of each.
void number_leaves(int i, int internal, std::vector<int>& expert_of, int& next) {
  if (i >= internal) {
    expert_of[i - internal] = next++;
    return;
  }
  number_leaves(2 * i + 1, internal, expert_of, next);
  number_leaves(2 * i + 2, internal, expert_of, next);
}
}  // namespace

const std::vector<GateKey>& CometGate::keys() {
  static const std::vector<GateKey> k = {kK, kGamma, kEntropy};
  return k;
}

CometConfig CometGate::config(int num_experts, const GateKeys& keys) {
  return {num_experts, int(keys.integer(kK)), keys.number(kGamma), keys.number(kEntropy)};
}

CometGate::CometGate(ParamRegistry& reg, const std::string& prefix, int64_t d, const CometConfig& c)
    : reg_(reg), cfg_(c), expert_of_(c.num_experts) {
  MT_CHECK(c.num_experts >= 2 && c.k >= 1 && c.gamma > 0,
           "comet: {} experts, k = {}, gamma = {} (at least 2 experts, k >= 1, gamma > 0)",
           c.num_experts, c.k, c.gamma);
  int next = 0;
  number_leaves(0, c.num_experts - 1, expert_of_, next);
  const float z_init = float(c.gamma / 100);  // the authors' U(-gamma/100, gamma/100)
  wz_ = reg.add(prefix + "/nodes/w", {d, (c.num_experts - 1) * c.k}, Init::uniform(z_init));
  bz_ = reg.add(prefix + "/nodes/b", {(c.num_experts - 1) * c.k}, Init::uniform(z_init));
  // Leaf l's k logits are columns [expert_of(l) k, + k); Keras RandomUniform() as the authors'.
  wa_ = reg.add(prefix + "/leaves/w", {d, c.num_experts * c.k}, Init::uniform(0.05f));
  ba_ = reg.add(prefix + "/leaves/b", {c.num_experts * c.k}, Init::uniform(0.05f));
}

void CometGate::paths(const float* z, float* pi) const {
  const int64_t E = cfg_.num_experts, k = cfg_.k;
  const float gamma = float(cfg_.gamma);
  for (int64_t j = 0; j < k; ++j) pi[j] = 1.0f;
  for (int64_t i = 0; i < E - 1; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const float q = smooth_step(z[i * k + j], gamma), p = pi[i * k + j];
      pi[(2 * i + 1) * k + j] = q * p;
      pi[(2 * i + 2) * k + j] = (1.0f - q) * p;
    }
}

// Routing: r.probs = omega [T, k E] (entry j E + e), r.saved = z [T, (E - 1) k].
Routing CometGate::route(Arena& arena, const Tensor& x, const RouteContext& ctx) const {
  const int64_t T = x.size(0), E = cfg_.num_experts, k = cfg_.k, nz = (E - 1) * k;
  const Tensor hz = router_logits(arena, x, reg_.value(wz_));
  const Tensor ha = router_logits(arena, x, reg_.value(wa_));
  const float *bz = arena.to_host(reg_.value(bz_)).f32(),
              *ba = arena.to_host(reg_.value(ba_)).f32();
  Routing r = every_expert(arena, T, int(E), ctx);
  r.x = x;
  r.probs = arena.host().alloc({T, k * E});
  r.saved = arena.host().alloc({T, nz});
  std::vector<float> pi((2 * E - 1) * k);
  double entropy = 0;
  for (int64_t t = 0; t < T; ++t) {
    float *z = r.saved.f32() + t * nz, *omega = r.probs.f32() + t * k * E;
    for (int64_t i = 0; i < nz; ++i) z[i] = hz.f32()[t * nz + i] + bz[i];
    paths(z, pi.data());
    for (int64_t l = 0; l < E; ++l)
      for (int64_t j = 0; j < k; ++j) {
        const int64_t e = expert_of_[l], a = e * k + j;
        const float p = pi[(E - 1 + l) * k + j];
        omega[j * E + e] = p > 0 ? ha.f32()[t * k * E + a] + ba[a] + std::log(p + kLogEps)
                                 : -std::numeric_limits<float>::infinity();
        if (ctx.training) entropy -= double(p) * std::log(p + kEntropyEps);
      }
    softmax_row(omega, k * E);
    for (int64_t e = 0; e < E; ++e) {
      float w = 0;
      for (int64_t j = 0; j < k; ++j) w += omega[j * E + e];
      r.weight.f32()[t * E + e] = w;
    }
  }
  mark_nonzero(r);
  r.aux = cfg_.entropy_weight * entropy / double(ctx.global_tokens);
  return r;
}

void CometGate::backward(Arena& arena, const Routing& r, const Tensor& dweight,
                         const Tensor& dx) const {
  const int64_t T = r.x.size(0), E = cfg_.num_experts, k = cfg_.k, nz = (E - 1) * k;
  const float gamma = float(cfg_.gamma);
  const float entropy_scale =
      r.ctx.training ? float(cfg_.entropy_weight / double(r.ctx.global_tokens)) : 0.0f;
  Tensor dz = arena.host().alloc({T, nz}), da = arena.host().alloc({T, k * E});
  Tensor dbz = arena.host().zeros({nz}), dba = arena.host().zeros({k * E});
  std::vector<float> pi((2 * E - 1) * k), dpi((2 * E - 1) * k), ds(k * E);
  for (int64_t t = 0; t < T; ++t) {
    const float *z = r.saved.f32() + t * nz, *omega = r.probs.f32() + t * k * E;
    const float* dw = dweight.f32() + t * E;
    paths(z, pi.data());
    // Through the joint softmax: d omega_je = dw_e (0 for an expert that did not run).
    float dot = 0;
    for (int64_t j = 0; j < k; ++j)
      for (int64_t e = 0; e < E; ++e) dot += omega[j * E + e] * dw[e];
    for (int64_t j = 0; j < k; ++j)
      for (int64_t e = 0; e < E; ++e) ds[j * E + e] = omega[j * E + e] * (dw[e] - dot);
    // The leaves: their logits, and their path probabilities through the log and the entropy.
    std::fill(dpi.begin(), dpi.end(), 0.0f);
    for (int64_t l = 0; l < E; ++l)
      for (int64_t j = 0; j < k; ++j) {
        const int64_t e = expert_of_[l], a = e * k + j, node = (E - 1 + l) * k + j;
        const float p = pi[node], g = ds[j * E + e];
        da.f32()[t * k * E + a] = g;
        dba.f32()[a] += g;
        dpi[node] = (p > 0 ? g / (p + kLogEps) : 0.0f) -
                    entropy_scale * (std::log(p + kEntropyEps) + p / (p + kEntropyEps));
      }
    // Up the tree, children before parents: pi_left = q pi, pi_right = (1 - q) pi.
    float* dzt = dz.f32() + t * nz;
    for (int64_t i = E - 2; i >= 0; --i)
      for (int64_t j = 0; j < k; ++j) {
        const float q = smooth_step(z[i * k + j], gamma), p = pi[i * k + j];
        const float dl = dpi[(2 * i + 1) * k + j], dr = dpi[(2 * i + 2) * k + j];
        dpi[i * k + j] += q * dl + (1.0f - q) * dr;
        dzt[i * k + j] = p * (dl - dr) * smooth_step_grad(z[i * k + j], gamma);
        dbz.f32()[i * k + j] += dzt[i * k + j];
      }
  }
  ops::add(reg_.grad(bz_), arena.to_device(dbz), reg_.grad(bz_));
  ops::add(reg_.grad(ba_), arena.to_device(dba), reg_.grad(ba_));
  router_backward(arena, r.x, dz, reg_.value(wz_), reg_.grad(wz_), dx);
  router_backward(arena, r.x, da, reg_.value(wa_), reg_.grad(wa_), dx);
}

}  // namespace mt
