// JEI-DNN's per-token exit rules (the authors' dynn code, read in docs/methods.md §9).
#include "model/exit_rules.hpp"

#include <algorithm>
#include <cmath>

namespace mt {

namespace {
constexpr double kTiny = 1e-30;
double entropy_of(const std::vector<double>& p) {
  double h = 0;
  for (double v : p) h -= v * std::log(std::max(v, kTiny));
  return h;
}
}  // namespace

std::array<float, 4> exit_features(const float* z, int64_t V) {
  const float top = *std::max_element(z, z + V);
  std::vector<double> p(V);
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += p[v] = std::exp(double(z[v]) - top);
  double first = 0, second = 0, squares = 0;
  for (double& v : p) {
    v /= sum;
    squares += v * v;
    if (v > first) {
      second = first;
      first = v;
    } else if (v > second) {
      second = v;
    }
  }
  std::vector<double> q(V);
  for (int64_t v = 0; v < V; ++v) q[v] = p[v] * p[v] / squares;
  return {float(first), float(entropy_of(p)), float(first - second), float(entropy_of(q))};
}

void exit_probabilities(const float* g, int G, float* p, float* q) {
  double sum_g = 0, stay = 1;
  for (int l = 0; l < G; ++l) {
    p[l] = float(std::max(0.0, std::min(double(g[l]), 1.0 - sum_g)));
    q[l] = stay > 0 ? float(std::clamp(p[l] / stay, 0.0, 1.0)) : 1.0f;
    sum_g += g[l];
    stay *= 1.0 - q[l];
  }
}

int exit_at(const float* q, int G) {
  for (int l = 0; l < G; ++l)
    if (q[l] >= 0.5f) return l;
  return G;
}

int oracle_exit(const float* ce, const std::vector<double>& cost, double lambda) {
  int best = 0;
  for (int l = 1; l < int(cost.size()); ++l)
    if (ce[l] + lambda * cost[l] < ce[best] + lambda * cost[best]) best = l;
  return best;
}

std::vector<float> positive_weights(const std::vector<double>& oracle_counts, double N) {
  std::vector<float> w(oracle_counts.size() - 1);
  for (size_t l = 0; l < w.size(); ++l) {
    const double n = std::max(oracle_counts[l], 0.1);
    w[l] = float(std::min((N - n) / n, 5.0));
  }
  return w;
}

double gate_bce(const float* score, const int32_t* oracle, int64_t T, int G,
                const std::vector<float>& pos_weight, double normalizer, float* dscore) {
  double sum = 0;
  for (int64_t t = 0; t < T; ++t)
    for (int l = 0; l < G; ++l) {
      if (oracle[t] < 0) {  // padding
        dscore[t * G + l] = 0;
        continue;
      }
      const double s = score[t * G + l], y = l >= oracle[t] ? 1 : 0;
      const double m = y > 0 ? pos_weight[l] : 1.0;
      sum += m * (std::max(s, 0.0) - y * s + std::log1p(std::exp(-std::abs(s))));
      const double sigma = 1 / (1 + std::exp(-s));
      dscore[t * G + l] = float(m * (sigma - y) / normalizer);
    }
  return sum;
}

void im_weights(ImLoss kind, const float* ce, const float* p, int G, float* w) {
  double S = 0, R = 0;
  for (int l = 0; l < G; ++l) S += ce[l], R += double(p[l]) * ce[l];
  for (int l = 0; l < G; ++l)
    w[l] = kind == ImLoss::Warmup ? float(G + 1 - l)
           : kind == ImLoss::Code ? 1.0f
                                  : (R > 0 ? float(p[l] * S / R) : 0.0f);
}

}  // namespace mt
