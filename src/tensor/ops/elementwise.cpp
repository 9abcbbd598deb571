// Elementwise ops, column sums, bias + GELU and the AdamW update (on CPU: OpenMP over elements
// or rows).
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/bf16.hpp"
#include "tensor/ops/dispatch.hpp"
#include "tensor/ops/fast_math.hpp"

namespace mt::ops {

namespace {
void check_same(const Tensor& a, const Tensor& b, const char* op) {
  MT_CHECK(a.numel() == b.numel(), "{}: {} vs {}", op, a.shape.str(), b.shape.str());
}
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)
#pragma omp declare simd
inline float gelu(float v) {
  return 0.5f * v * (1.0f + cpu::fast_tanh(kGeluC * (v + 0.044715f * v * v * v)));
}
#pragma omp declare simd
inline float gelu_grad(float v) {
  const float th = cpu::fast_tanh(kGeluC * (v + 0.044715f * v * v * v));
  const float du = kGeluC * (1.0f + 3.0f * 0.044715f * v * v);
  return 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * du;
}

// db[j] += sum_i row(i)[j] for the r rows of c columns that row(i) yields (it may compute row i in
// place first): rows in fixed chunks, each summed in row order into its own partial sums, then
// the chunks' sums added in order. Each row is walked once, contiguously, and the result has the
// same bits for any thread count.
template <class Row>
void accumulate_column_sums(int64_t r, int64_t c, float* db, const Row& row) {
  constexpr int64_t kRows = 32;
  const int64_t chunks = (r + kRows - 1) / kRows;
  thread_local std::vector<float> parts;
  parts.assign(size_t(chunks * c), 0.0f);
  float* part = parts.data();
#pragma omp parallel for if (r * c > 16384)
  for (int64_t k = 0; k < chunks; ++k) {
    float* acc = part + k * c;
    for (int64_t i = k * kRows; i < std::min(r, (k + 1) * kRows); ++i) {
      const float* p = row(i);
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) acc[j] += p[j];
    }
  }
  for (int64_t k = 1; k < chunks; ++k)
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) part[j] += part[k * c + j];
  if (chunks > 0)
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) db[j] += part[j];
}
}  // namespace

void fill(const Tensor& t, float v) {
  MT_ON_CUDA(t, fill(t.f32(), t.numel(), v));
  float* p = t.f32();
  const int64_t n = t.numel();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) p[i] = v;
}

void add(const Tensor& a, const Tensor& b, const Tensor& out) {
  check_same(a, b, "add");
  check_same(a, out, "add");
  MT_ON_CUDA(out, add(a.f32(), b.f32(), out.f32(), a.numel()));
  const float *x = a.f32(), *y = b.f32();
  float* o = out.f32();
  const int64_t n = a.numel();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) o[i] = x[i] + y[i];
}

void mul(const Tensor& a, const Tensor& b, const Tensor& out) {
  check_same(a, b, "mul");
  check_same(a, out, "mul");
  MT_ON_CUDA(out, mul(a.f32(), b.f32(), out.f32(), a.numel()));
  const float *x = a.f32(), *y = b.f32();
  float* o = out.f32();
  const int64_t n = a.numel();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) o[i] = x[i] * y[i];
}

void add_rows(const Tensor& y, const Tensor& bias) {
  const int64_t c = bias.numel(), r = y.numel() / c;
  MT_CHECK(y.size(-1) == c, "add_rows: {} + {}", y.shape.str(), bias.shape.str());
  MT_ON_CUDA(y, add_rows(y.f32(), bias.f32(), r, c));
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
  MT_ON_CUDA(db, sum_rows_accumulate(dy.f32(), db.f32(), r, c));
  const float* p = dy.f32();
  accumulate_column_sums(r, c, db.f32(), [&](int64_t i) { return p + i * c; });
}

double sum_squares(const Tensor& t) {
  MT_ON_CUDA(t, sum_squares(t.f32(), t.numel()));
  // Fixed chunks summed in order: the same sum for any thread count.
  constexpr int64_t kChunk = 1 << 16;
  const float* p = t.f32();
  const int64_t n = t.numel(), chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks);
#pragma omp parallel for if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) s += double(p[i]) * p[i];
    partial[c] = s;
  }
  double s = 0;
  for (const double x : partial) s += x;
  return s;
}

void bias_gelu(const Tensor& y, const Tensor& bias, const Tensor& act) {
  const int64_t c = bias.numel(), r = y.numel() / c;
  MT_CHECK(y.size(-1) == c, "bias_gelu: {} + {}", y.shape.str(), bias.shape.str());
  check_same(y, act, "bias_gelu");
  MT_ON_CUDA(y, bias_gelu(y.f32(), bias.f32(), act.f32(), r, c));
  float* p = y.f32();
  const float* b = bias.f32();
  auto rows = [&](auto* o) {
#pragma omp parallel for if (r * c > 16384)
    for (int64_t i = 0; i < r; ++i)
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) {
        const float v = p[i * c + j] + b[j];
        p[i * c + j] = v;
        if constexpr (std::is_same_v<decltype(o), float*>)
          o[i * c + j] = gelu(v);
        else
          o[i * c + j] = cpu::to_bf16(gelu(v));
      }
  };
  if (act.dtype == DType::BF16)
    rows(act.bf16());
  else
    rows(act.f32());
}

void gelu_backward_bias(const Tensor& x, const Tensor& d, const Tensor& db) {
  const int64_t c = db.numel(), r = x.numel() / c;
  MT_CHECK(x.size(-1) == c, "gelu_backward_bias: {} into {}", x.shape.str(), db.shape.str());
  check_same(x, d, "gelu_backward_bias");
  MT_ON_CUDA(x, gelu_backward_bias(x.f32(), d.f32(), db.f32(), r, c));
  const float* a = x.f32();
  float* g = d.f32();
  accumulate_column_sums(r, c, db.f32(), [&](int64_t i) {
    const float* in = a + i * c;
    float* row = g + i * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) row[j] *= gelu_grad(in[j]);
    return row;
  });
}

void adamw_update(const Tensor& param_t, const Tensor& grad_t, const Tensor& m_t, const Tensor& v_t,
                  const AdamWStep& s) {
  const int64_t n = param_t.numel();
  MT_CHECK(grad_t.numel() == n && m_t.numel() == n && v_t.numel() == n,
           "adamw_update: param {} grad {}", param_t.shape.str(), grad_t.shape.str());
  const float c1 = 1.0f - std::pow(s.beta1, float(s.step));
  const float c2 = 1.0f - std::pow(s.beta2, float(s.step));
  float *param = param_t.f32(), *m = m_t.f32(), *v = v_t.f32();
  const float* grad = grad_t.f32();
  MT_ON_CUDA(param_t, adamw_update(param, grad, m, v, n, s.lr, s.beta1, s.beta2, s.eps,
                                   s.weight_decay, c1, c2, s.grad_scale));
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i] * s.grad_scale;
    m[i] = s.beta1 * m[i] + (1.0f - s.beta1) * g;
    v[i] = s.beta2 * v[i] + (1.0f - s.beta2) * g * g;
    float mhat = m[i] / c1, vhat = v[i] / c2;
    param[i] -= s.lr * (mhat / (std::sqrt(vhat) + s.eps) + s.weight_decay * param[i]);
  }
}

}  // namespace mt::ops
