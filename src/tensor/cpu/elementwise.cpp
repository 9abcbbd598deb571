// Elementwise ops, row reductions, GELU and the AdamW update (OpenMP over elements or columns).
#include <cmath>

#include "tensor/cpu/fast_math.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"

namespace mt::ops {

namespace {
void check_same(const Tensor& a, const Tensor& b, const char* op) {
  MT_CHECK(a.numel() == b.numel(), "{}: {} vs {}", op, a.shape.str(), b.shape.str());
}
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)
}  // namespace

void fill(const Tensor& t, float v) {
  float* p = t.f32();
  const int64_t n = t.numel();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) p[i] = v;
}

void add(const Tensor& a, const Tensor& b, const Tensor& out) {
  check_same(a, b, "add");
  check_same(a, out, "add");
  const float *x = a.f32(), *y = b.f32();
  float* o = out.f32();
  const int64_t n = a.numel();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) o[i] = x[i] + y[i];
}

void add_rows(const Tensor& y, const Tensor& bias) {
  const int64_t c = bias.numel(), r = y.numel() / c;
  MT_CHECK(y.size(-1) == c, "add_rows: {} + {}", y.shape.str(), bias.shape.str());
  float* p = y.f32();
  const float* b = bias.f32();
#pragma omp parallel for if (r * c > 65536)
  for (int64_t i = 0; i < r; ++i)
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) p[i * c + j] += b[j];
}

void sum_rows_accumulate(const Tensor& dy, const Tensor& db) {
  const int64_t c = db.numel(), r = dy.numel() / c;
  MT_CHECK(dy.size(-1) == c, "sum_rows: {} into {}", dy.shape.str(), db.shape.str());
  const float* p = dy.f32();
  float* out = db.f32();
  // Columns split over threads; each column summed in row order, so the result is deterministic.
#pragma omp parallel if (r * c > 65536)
  {
    float acc[64];
#pragma omp for
    for (int64_t j0 = 0; j0 < c; j0 += 64) {
      const int64_t w = std::min<int64_t>(64, c - j0);
      for (int64_t j = 0; j < w; ++j) acc[j] = 0;
      for (int64_t i = 0; i < r; ++i)
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) acc[j] += p[i * c + j0 + j];
      for (int64_t j = 0; j < w; ++j) out[j0 + j] += acc[j];
    }
  }
}

double sum_squares(const Tensor& t) {
  const float* p = t.f32();
  const int64_t n = t.numel();
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(p[i]) * p[i];
  return s;
}

void scale(const Tensor& t, float s) {
  float* p = t.f32();
  const int64_t n = t.numel();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) p[i] *= s;
}

void gelu_forward(const Tensor& x, const Tensor& y) {
  check_same(x, y, "gelu");
  const float* a = x.f32();
  float* o = y.f32();
  const int64_t n = x.numel();
#pragma omp parallel for simd if (n > 16384)
  for (int64_t i = 0; i < n; ++i) {
    float v = a[i];
    o[i] = 0.5f * v * (1.0f + cpu::fast_tanh(kGeluC * (v + 0.044715f * v * v * v)));
  }
}

void gelu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx) {
  check_same(x, dy, "gelu_backward");
  check_same(x, dx, "gelu_backward");
  const float *a = x.f32(), *g = dy.f32();
  float* o = dx.f32();
  const int64_t n = x.numel();
#pragma omp parallel for simd if (n > 16384)
  for (int64_t i = 0; i < n; ++i) {
    float v = a[i];
    float u = kGeluC * (v + 0.044715f * v * v * v);
    float th = cpu::fast_tanh(u);
    float du = kGeluC * (1.0f + 3.0f * 0.044715f * v * v);
    o[i] = g[i] * (0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * du);
  }
}

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n,
                  const AdamWStep& s) {
  const float c1 = 1.0f - std::pow(s.beta1, float(s.step));
  const float c2 = 1.0f - std::pow(s.beta2, float(s.step));
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    m[i] = s.beta1 * m[i] + (1.0f - s.beta1) * grad[i];
    v[i] = s.beta2 * v[i] + (1.0f - s.beta2) * grad[i] * grad[i];
    float mhat = m[i] / c1, vhat = v[i] / c2;
    param[i] -= s.lr * (mhat / (std::sqrt(vhat) + s.eps) + s.weight_decay * param[i]);
  }
}

}  // namespace mt::ops
