// Sinkhorn forward and backward, the schedules, and the Hungarian assignment.
#include "gates/permutation.hpp"

#include <cmath>
#include <limits>

namespace mt {

double sinkhorn_tau(int64_t t, int64_t steps) {
  return std::pow(10.0, -3.0 - 4.0 * double(t) / double(steps));
}

int sinkhorn_iterations(int64_t t, int64_t steps) {
  return int(20.0 + 130.0 * double(t) / double(steps));
}

namespace {
// x[i, :] -= logsumexp(x[i, :]) (rows) or x[:, j] -= logsumexp(x[:, j]) (columns), in place.
void normalise(std::vector<double>& x, int64_t n, bool rows) {
  for (int64_t a = 0; a < n; ++a) {
    const auto at = [&](int64_t b) -> double& { return rows ? x[a * n + b] : x[b * n + a]; };
    double mx = at(0);
    for (int64_t b = 1; b < n; ++b) mx = std::max(mx, at(b));
    double s = 0;
    for (int64_t b = 0; b < n; ++b) s += std::exp(at(b) - mx);
    const double lse = mx + std::log(s);
    for (int64_t b = 0; b < n; ++b) at(b) -= lse;
  }
}
// d[i, j] -= exp(y[i, j]) * sum over the row (or column) of d: the backward of normalise, y its
// output.
void normalise_backward(std::vector<double>& d, const std::vector<double>& y, int64_t n,
                        bool rows) {
  for (int64_t a = 0; a < n; ++a) {
    const auto at = [&](const std::vector<double>& m, int64_t b) {
      return rows ? m[a * n + b] : m[b * n + a];
    };
    double s = 0;
    for (int64_t b = 0; b < n; ++b) s += at(d, b);
    for (int64_t b = 0; b < n; ++b) (rows ? d[a * n + b] : d[b * n + a]) -= std::exp(at(y, b)) * s;
  }
}
}  // namespace

Sinkhorn sinkhorn(const float* logits, int64_t n, double tau, int iterations) {
  Sinkhorn s;
  s.n = n;
  std::vector<double> x(n * n);
  for (int64_t i = 0; i < n * n; ++i) x[i] = double(logits[i]) / tau;
  for (int it = 0; it < iterations; ++it) {
    s.inputs.emplace_back(x.begin(), x.end());
    normalise(x, n, true);
    normalise(x, n, false);
  }
  s.p.resize(n * n);
  for (int64_t i = 0; i < n * n; ++i) s.p[i] = float(std::exp(x[i]));
  return s;
}

void sinkhorn_backward(const Sinkhorn& s, const float* dp, double tau, float* dlogits) {
  const int64_t n = s.n;
  std::vector<double> g(n * n), a(n * n), out(n * n);
  for (int64_t i = 0; i < n * n; ++i) g[i] = double(dp[i]) * double(s.p[i]);
  for (size_t it = s.inputs.size(); it-- > 0;) {
    // Recompute this iteration: a = rows normalised, out = a's columns normalised.
    a.assign(s.inputs[it].begin(), s.inputs[it].end());
    normalise(a, n, true);
    out = a;
    normalise(out, n, false);
    normalise_backward(g, out, n, false);
    normalise_backward(g, a, n, true);
  }
  for (int64_t i = 0; i < n * n; ++i) dlogits[i] += float(g[i] / tau);
}

std::vector<int> max_assignment(const float* w, int64_t n) {
  // Minimises the cost -w; rows and columns 1-based, 0 the virtual start column.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0.0), v(n + 1, 0.0);
  std::vector<int64_t> row_of(n + 1, 0), way(n + 1, 0);
  for (int64_t i = 1; i <= n; ++i) {
    row_of[0] = i;
    int64_t j0 = 0;
    std::vector<double> minv(n + 1, inf);
    std::vector<bool> used(n + 1, false);
    do {
      used[j0] = true;
      const int64_t i0 = row_of[j0];
      double delta = inf;
      int64_t j1 = 0;
      for (int64_t j = 1; j <= n; ++j) {
        if (used[j]) continue;
        const double cur = -double(w[(i0 - 1) * n + (j - 1)]) - u[i0] - v[j];
        if (cur < minv[j]) minv[j] = cur, way[j] = j0;
        if (minv[j] < delta) delta = minv[j], j1 = j;
      }
      for (int64_t j = 0; j <= n; ++j) {
        if (used[j]) {
          u[row_of[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (row_of[j0] != 0);
    do {
      const int64_t j1 = way[j0];
      row_of[j0] = row_of[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<int> col(n);
  for (int64_t j = 1; j <= n; ++j) col[row_of[j] - 1] = int(j - 1);
  return col;
}

}  // namespace mt
