// The permutation local search around any gate: forward and backward side by side.
#include "gates/permuted.hpp"

#include <cmath>

#include "gates/permutation.hpp"
#include "tensor/ops.hpp"
#include "tensor/rng.hpp"

namespace mt {

namespace {
constexpr float kEps = 1e-6f;  // the authors' log(P + 1e-6)

const GateKey kSteps{.name = "perm.steps",
                     .value = int64_t(0),
                     .help =
                         "COMET+ permutation local search: training steps that learn the "
                         "soft permutation, then the hard one (0: no permutation; any gate)",
                     .least = 0};
const GateKey kEntropy{.name = "perm.entropy",
                       .value = 1e-4,
                       .help = "COMET+: weight of the soft permutation's entropy terms",
                       .least = 0};
const GateKey kNoise{.name = "perm.noise",
                     .value = 0.0,
                     .help = "COMET+: Gumbel noise scale on the permutation logits",
                     .least = 0};

// H(X) = sum -X log(X + eps) of P and of P / row sums, and (when dp) its gradient times `scale`
// added to dp.
double entropy(const std::vector<float>& p, int64_t n, float scale, float* dp) {
  double h = 0;
  std::vector<float> q(n * n), dq(n * n), rows(n);
  for (int64_t i = 0; i < n; ++i) {
    rows[i] = 0;
    for (int64_t j = 0; j < n; ++j) rows[i] += p[i * n + j];
    for (int64_t j = 0; j < n; ++j) q[i * n + j] = p[i * n + j] / rows[i];
  }
  for (int64_t i = 0; i < n * n; ++i) {
    h -= double(p[i]) * std::log(p[i] + kEps) + double(q[i]) * std::log(q[i] + kEps);
    if (dp) {
      dp[i] -= scale * (std::log(p[i] + kEps) + p[i] / (p[i] + kEps));
      dq[i] = -scale * (std::log(q[i] + kEps) + q[i] / (q[i] + kEps));
    }
  }
  if (dp)  // q_ij = p_ij / r_i
    for (int64_t i = 0; i < n; ++i) {
      float dot = 0;
      for (int64_t j = 0; j < n; ++j) dot += dq[i * n + j] * q[i * n + j];
      for (int64_t j = 0; j < n; ++j) dp[i * n + j] += (dq[i * n + j] - dot) / rows[i];
    }
  return h;
}

// Token t's inner weights w [E] from its (expert, weight) pairs; returns their sum.
float dense_weights(const Routing& r, int64_t t, int64_t E, float* w) {
  std::fill(w, w + E, 0.0f);
  float sum = 0;
  for (int c = 0; c < r.k; ++c)
    if (const int32_t e = r.expert.i32()[t * r.k + c]; e >= 0) {
      w[e] += r.weight.f32()[t * r.k + c];
      sum += r.weight.f32()[t * r.k + c];
    }
  return sum;
}

// v = w P [E]; returns sum(v).
float permute(const float* w, const std::vector<float>& p, int64_t E, float* v) {
  float sum = 0;
  for (int64_t l = 0; l < E; ++l) {
    v[l] = 0;
    for (int64_t e = 0; e < E; ++e) v[l] += w[e] * p[e * E + l];
    sum += v[l];
  }
  return sum;
}
}  // namespace

const std::vector<GateKey>& PermutedGate::keys() {
  static const std::vector<GateKey> k = {kSteps, kEntropy, kNoise};
  return k;
}

bool PermutedGate::enabled(const GateKeys& keys) {
  return keys.integer(kSteps) > 0;
}

PermutedGate::PermutedGate(std::unique_ptr<Gate> inner, ParamRegistry& reg,
                           const std::string& prefix, int num_experts, const GateKeys& keys)
    : inner_(std::move(inner)),
      reg_(reg),
      num_experts_(num_experts),
      steps_(keys.integer(kSteps)),
      entropy_weight_(keys.number(kEntropy)),
      noise_(keys.number(kNoise)) {
  const int64_t E = num_experts;
  lambda_ = reg.add(prefix + "/perm/logits", {E * E}, Init::uniform(0.05f));  // the authors'
  stored_ = reg.add(prefix + "/perm/soft", {E * E}, Init::zeros());
}

std::vector<float> PermutedGate::logits(Arena& arena, const RouteContext& ctx) const {
  const int64_t n = int64_t(num_experts_) * num_experts_;
  const float* lambda = arena.to_host(reg_.value(lambda_)).f32();
  std::vector<float> l(lambda, lambda + n);
  if (noise_ > 0) {
    const Rng gumbel(
        ctx.seed, stream_id({name_hash("perm-gumbel"), uint64_t(ctx.step), uint64_t(ctx.layer)}));
    for (int64_t i = 0; i < n; ++i)
      l[i] += float(noise_) * -std::log(-std::log(gumbel.uniform(uint64_t(i))));
  }
  return l;
}

Routing PermutedGate::route(Arena& arena, const Tensor& x, const RouteContext& ctx) const {
  Routing r = inner_->route(arena, x, ctx);
  const int64_t T = x.size(0), E = num_experts_;
  if (!learning(ctx)) {  // the hard permutation: expert e's pairs go to col(e)
    const Tensor stored = arena.to_host(reg_.value(stored_));
    const std::vector<int> col = max_assignment(stored.f32(), E);
    for (int64_t i = 0; i < r.expert.numel(); ++i)
      if (int32_t& e = r.expert.i32()[i]; e >= 0) e = col[e];
    std::vector<int64_t> load(E);
    for (int64_t e = 0; e < E; ++e) load[col[e]] = r.load[e];
    r.load = load;
    return r;
  }
  const double tau = sinkhorn_tau(ctx.step, steps_);
  const Sinkhorn s =
      sinkhorn(logits(arena, ctx).data(), E, tau, sinkhorn_iterations(ctx.step, steps_));
  const Tensor host = arena.host().alloc({E * E});
  std::copy(s.p.begin(), s.p.end(), host.f32());
  ops::copy(host, reg_.value(stored_));
  Routing out = every_expert(arena, T, int(E), ctx);
  out.probs = arena.host().alloc({T, E});  // the inner weights w
  out.dropped = r.dropped;
  out.z = r.z;
  std::vector<float> v(E);
  for (int64_t t = 0; t < T; ++t) {
    float *w = out.probs.f32() + t * E, *wp = out.weight.f32() + t * E;
    const float sw = dense_weights(r, t, E, w), sv = permute(w, s.p, E, v.data());
    for (int64_t l = 0; l < E; ++l) wp[l] = sv > 0 ? v[l] * (sw / sv) : 0.0f;
  }
  mark_nonzero(out);
  // This rank's share of the entropy terms: the step's total over the global batch's tokens.
  out.aux = r.aux + entropy_weight_ * entropy(s.p, E, 0.0f, nullptr) * double(T) /
                        double(ctx.global_tokens);
  out.inner = std::make_shared<const Routing>(std::move(r));
  return out;
}

void PermutedGate::backward(Arena& arena, const Routing& r, const Tensor& dweight,
                            const Tensor& dx) const {
  if (!r.inner) return inner_->backward(arena, r, dweight, dx);  // relabelled: the same columns
  const Routing& in = *r.inner;
  const int64_t T = r.probs.size(0), E = num_experts_;
  const double tau = sinkhorn_tau(r.ctx.step, steps_);
  const Sinkhorn s =
      sinkhorn(logits(arena, r.ctx).data(), E, tau, sinkhorn_iterations(r.ctx.step, steps_));
  std::vector<float> dp(E * E, 0.0f), v(E), dv(E), dw(E);
  Tensor din = arena.host().zeros({T, in.k});
  for (int64_t t = 0; t < T; ++t) {
    const float* w = r.probs.f32() + t * E;
    const float *wp = r.weight.f32() + t * E, *g = dweight.f32() + t * E;
    float sw = 0;
    for (int64_t e = 0; e < E; ++e) sw += w[e];
    const float sv = permute(w, s.p, E, v.data());
    if (!(sv > 0)) continue;  // every choice dropped: no weight, no gradient
    // w' = v sw / sv: dv = (sw / sv) (dw' - <w', dw'> / sw), d sw = <w', dw'> / sw.
    float dot = 0;
    for (int64_t l = 0; l < E; ++l) dot += wp[l] * (r.expert.i32()[t * E + l] >= 0 ? g[l] : 0.0f);
    for (int64_t l = 0; l < E; ++l)
      dv[l] = (sw / sv) * ((r.expert.i32()[t * E + l] >= 0 ? g[l] : 0.0f) - dot / sw);
    for (int64_t e = 0; e < E; ++e) {
      dw[e] = dot / sw;
      for (int64_t l = 0; l < E; ++l) {
        dw[e] += s.p[e * E + l] * dv[l];
        dp[e * E + l] += w[e] * dv[l];
      }
    }
    for (int c = 0; c < in.k; ++c)
      if (const int32_t e = in.expert.i32()[t * in.k + c]; e >= 0) din.f32()[t * in.k + c] = dw[e];
  }
  entropy(s.p, E, float(entropy_weight_ * double(T) / double(r.ctx.global_tokens)), dp.data());
  Tensor dlambda = arena.host().zeros({E * E});
  sinkhorn_backward(s, dp.data(), tau, dlambda.f32());
  ops::add(reg_.grad(lambda_), arena.to_device(dlambda), reg_.grad(lambda_));
  inner_->backward(arena, in, din, dx);
}

}  // namespace mt
