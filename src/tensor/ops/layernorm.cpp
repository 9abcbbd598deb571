// LayerNorm over the last dimension: forward and backward side by side.
#include <cmath>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/dispatch.hpp"

namespace mt::ops {

namespace {
constexpr float kEps = 1e-5f;

// One row: mean, 1/std and the normalised, scaled and shifted output.
inline void layernorm_row(const float* row, const float* g, const float* b, float* out, int64_t c,
                          float& mean, float& rstd) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < c; ++j) s += row[j];
  const float mu = s / c;
  float v = 0;
#pragma omp simd reduction(+ : v)
  for (int64_t j = 0; j < c; ++j) v += (row[j] - mu) * (row[j] - mu);
  const float rs = 1.0f / std::sqrt(v / c + kEps);
#pragma omp simd
  for (int64_t j = 0; j < c; ++j) out[j] = (row[j] - mu) * rs * g[j] + b[j];
  mean = mu;
  rstd = rs;
}

void check_forward(const Tensor& x, const Tensor& gamma, const Tensor& y, const Tensor& mean,
                   const Tensor& rstd) {
  const int64_t c = gamma.numel(), r = x.numel() / c;
  MT_CHECK(x.size(-1) == c && y.numel() == x.numel() && mean.numel() == r && rstd.numel() == r,
           "layernorm: x {} gamma {}", x.shape.str(), gamma.shape.str());
}
}  // namespace

void layernorm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& y,
                       const Tensor& mean, const Tensor& rstd) {
  check_forward(x, gamma, y, mean, rstd);
  const int64_t c = gamma.numel(), r = x.numel() / c;
  MT_ON_CUDA(x, layernorm_forward(x.f32(), gamma.f32(), beta.f32(), y.f32(), mean.f32(), rstd.f32(),
                                  r, c));
  const float *px = x.f32(), *g = gamma.f32(), *b = beta.f32();
  float *py = y.f32(), *pm = mean.f32(), *ps = rstd.f32();
#pragma omp parallel for if (r * c > 32768)
  for (int64_t i = 0; i < r; ++i) layernorm_row(px + i * c, g, b, py + i * c, c, pm[i], ps[i]);
}

void add_layernorm_forward(const Tensor& x, const Tensor& a, const Tensor& sum, const Tensor& gamma,
                           const Tensor& beta, const Tensor& y, const Tensor& mean,
                           const Tensor& rstd) {
  check_forward(x, gamma, y, mean, rstd);
  MT_CHECK(a.numel() == x.numel() && sum.numel() == x.numel(), "add_layernorm: {} + {} -> {}",
           x.shape.str(), a.shape.str(), sum.shape.str());
  if (x.device != Device::CPU) {  // CUDA: the two kernels in turn
    add(x, a, sum);
    return layernorm_forward(sum, gamma, beta, y, mean, rstd);
  }
  const int64_t c = gamma.numel(), r = x.numel() / c;
  const float *px = x.f32(), *pa = a.f32(), *g = gamma.f32(), *b = beta.f32();
  float *pz = sum.f32(), *py = y.f32(), *pm = mean.f32(), *ps = rstd.f32();
#pragma omp parallel for if (r * c > 32768)
  for (int64_t i = 0; i < r; ++i) {
    float* row = pz + i * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) row[j] = px[i * c + j] + pa[i * c + j];
    layernorm_row(row, g, b, py + i * c, c, pm[i], ps[i]);
  }
}

void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                        const Tensor& rstd, const Tensor& dx, const Tensor& dgamma,
                        const Tensor& dbeta) {
  const int64_t c = gamma.numel(), r = x.numel() / c;
  MT_CHECK(dy.numel() == x.numel() && dx.numel() == x.numel(), "layernorm_backward: {} vs {}",
           dy.shape.str(), x.shape.str());
  MT_ON_CUDA(x, layernorm_backward(dy.f32(), x.f32(), gamma.f32(), mean.f32(), rstd.f32(), dx.f32(),
                                   dgamma.f32(), dbeta.f32(), r, c));
  const float *pdy = dy.f32(), *px = x.f32(), *g = gamma.f32(), *pm = mean.f32(), *ps = rstd.f32();
  float *pdx = dx.f32(), *dg = dgamma.f32(), *db = dbeta.f32();
  // dx: rows in parallel.
#pragma omp parallel for if (r * c > 32768)
  for (int64_t i = 0; i < r; ++i) {
    const float *row = px + i * c, *drow = pdy + i * c;
    const float mu = pm[i], rs = ps[i];
    float sum_dn = 0, sum_dn_xhat = 0;
#pragma omp simd reduction(+ : sum_dn, sum_dn_xhat)
    for (int64_t j = 0; j < c; ++j) {
      const float dn = drow[j] * g[j];
      sum_dn += dn;
      sum_dn_xhat += dn * (row[j] - mu) * rs;
    }
    sum_dn /= c;
    sum_dn_xhat /= c;
    float* out = pdx + i * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) {
      const float xhat = (row[j] - mu) * rs;
      out[j] += rs * (drow[j] * g[j] - sum_dn - xhat * sum_dn_xhat);
    }
  }
  // dgamma, dbeta: columns in parallel, rows summed in order (deterministic).
#pragma omp parallel for if (r * c > 32768)
  for (int64_t j0 = 0; j0 < c; j0 += 16) {
    const int64_t w = std::min<int64_t>(16, c - j0);
    float ag[16] = {}, ab[16] = {};
    for (int64_t i = 0; i < r; ++i) {
      const float mu = pm[i], rs = ps[i];
      for (int64_t j = 0; j < w; ++j) {
        const float d = pdy[i * c + j0 + j];
        ag[j] += d * (px[i * c + j0 + j] - mu) * rs;
        ab[j] += d;
      }
    }
    for (int64_t j = 0; j < w; ++j) {
      dg[j0 + j] += ag[j];
      db[j0 + j] += ab[j];
    }
  }
}

}  // namespace mt::ops
