// Causal multi-head self-attention on packed qkv: forward and backward side by side.
// Each (batch, head) pair is independent: OpenMP over pairs; each pair's GEMMs run serially on its
// thread.
#include <cmath>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/dispatch.hpp"
#include "tensor/ops/fast_math.hpp"
#include "tensor/ops/sgemm.hpp"

namespace mt::ops {

namespace {
struct Dims {
  int64_t B, T, d, H, hd;
};
Dims dims_of(const Tensor& qkv, int n_head) {
  MT_CHECK(qkv.ndim() == 3 && qkv.size(2) % 3 == 0, "attention: qkv {} is not [B,T,3d]",
           qkv.shape.str());
  const int64_t d = qkv.size(2) / 3;
  MT_CHECK(n_head > 0 && d % n_head == 0, "attention: d={} not divisible by {} heads", d, n_head);
  return {qkv.size(0), qkv.size(1), d, n_head, d / n_head};
}
}  // namespace

void attention_forward(const Tensor& qkv, int n_head, const Tensor& out, const Tensor& probs,
                       const Tensor& mask, const Tensor& dropped) {
  const Dims D = dims_of(qkv, n_head);
  MT_CHECK(out.numel() == D.B * D.T * D.d && probs.numel() == D.B * D.H * D.T * D.T,
           "attention: out {} probs {}", out.shape.str(), probs.shape.str());
  MT_CHECK(mask.empty() || (mask.numel() == probs.numel() && dropped.numel() == probs.numel()),
           "attention: dropout mask {} for probs {}", mask.shape.str(), probs.shape.str());
  MT_ON_CUDA(qkv, attention_forward(qkv.f32(), out.f32(), probs.f32(), mask.f32(), dropped.f32(),
                                    D.B, D.T, D.H, D.hd));
  const float scale = 1.0f / std::sqrt(float(D.hd));
  const float* base = qkv.f32();
  float *o = out.f32(), *P = probs.f32();
  const float* M = mask.empty() ? nullptr : mask.f32();
  const int64_t ld = 3 * D.d;
#pragma omp parallel for schedule(dynamic)
  for (int64_t bh = 0; bh < D.B * D.H; ++bh) {
    const int64_t b = bh / D.H, h = bh % D.H;
    const float* q = base + b * D.T * ld + h * D.hd;
    const float* k = q + D.d;
    const float* v = q + 2 * D.d;
    float* p = P + bh * D.T * D.T;
    // Scores S = scale * Q K^T (full square; the upper triangle is masked below).
    cpu::sgemm(false, true, D.T, D.T, D.hd, scale, q, ld, k, ld, 0.0f, p, D.T);
    for (int64_t i = 0; i < D.T; ++i) {
      float* row = p + i * D.T;
      float mx = row[0];
      for (int64_t j = 1; j <= i; ++j) mx = std::max(mx, row[j]);
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j <= i; ++j) {
        row[j] = cpu::fast_exp(row[j] - mx);
        s += row[j];
      }
      const float inv = 1.0f / s;
      for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
      for (int64_t j = i + 1; j < D.T; ++j) row[j] = 0.0f;
    }
    // The values' weights: the probabilities, or with dropout the dropped ones.
    float* w = p;
    if (M) {
      w = dropped.f32() + bh * D.T * D.T;
      const float* m = M + bh * D.T * D.T;
      for (int64_t i = 0; i < D.T * D.T; ++i) w[i] = p[i] * m[i];
    }
    cpu::sgemm(false, false, D.T, D.hd, D.T, 1.0f, w, D.T, v, ld, 0.0f,
               o + b * D.T * D.d + h * D.hd, D.d);
  }
}

void attention_backward(const Tensor& dout, const Tensor& qkv, const Tensor& probs, int n_head,
                        const Tensor& dqkv, const Tensor& scratch, const Tensor& mask,
                        const Tensor& dropped) {
  const Dims D = dims_of(qkv, n_head);
  MT_CHECK(dqkv.numel() == qkv.numel() && dout.numel() == D.B * D.T * D.d &&
               scratch.numel() == probs.numel(),
           "attention_backward: shapes dout {} dqkv {}", dout.shape.str(), dqkv.shape.str());
  MT_CHECK(mask.empty() || (mask.numel() == probs.numel() && dropped.numel() == probs.numel()),
           "attention_backward: dropout mask {} for probs {}", mask.shape.str(), probs.shape.str());
  MT_ON_CUDA(qkv, attention_backward(dout.f32(), qkv.f32(), probs.f32(), mask.f32(), dropped.f32(),
                                     dqkv.f32(), scratch.f32(), D.B, D.T, D.H, D.hd));
  const float* M = mask.empty() ? nullptr : mask.f32();
  const float scale = 1.0f / std::sqrt(float(D.hd));
  const float *base = qkv.f32(), *P = probs.f32(), *dO = dout.f32();
  float *dbase = dqkv.f32(), *S = scratch.f32();
  const int64_t ld = 3 * D.d;
#pragma omp parallel for schedule(dynamic)
  for (int64_t bh = 0; bh < D.B * D.H; ++bh) {
    const int64_t b = bh / D.H, h = bh % D.H;
    const int64_t off = b * D.T * ld + h * D.hd;
    const float *q = base + off, *k = q + D.d, *v = q + 2 * D.d;
    float *dq = dbase + off, *dk = dq + D.d, *dv = dq + 2 * D.d;
    const float* p = P + bh * D.T * D.T;
    const float* dout_bh = dO + b * D.T * D.d + h * D.hd;
    float* ds = S + bh * D.T * D.T;
    // dV = W^T dO ; dW = dO V^T, W the values' weights (the dropped probabilities with dropout)
    const float* w = M ? dropped.f32() + bh * D.T * D.T : p;
    cpu::sgemm(true, false, D.T, D.hd, D.T, 1.0f, w, D.T, dout_bh, D.d, 0.0f, dv, ld);
    cpu::sgemm(false, true, D.T, D.T, D.hd, 1.0f, dout_bh, D.d, v, ld, 0.0f, ds, D.T);
    if (M) {  // dP = dW * mask
      const float* m = M + bh * D.T * D.T;
      for (int64_t i = 0; i < D.T * D.T; ++i) ds[i] *= m[i];
    }
    // dS = P * (dP - rowsum(dP * P)); masked entries have P = 0.
    for (int64_t i = 0; i < D.T; ++i) {
      const float* prow = p + i * D.T;
      float* row = ds + i * D.T;
      float dot = 0;
      for (int64_t j = 0; j <= i; ++j) dot += row[j] * prow[j];
      for (int64_t j = 0; j <= i; ++j) row[j] = prow[j] * (row[j] - dot);
      for (int64_t j = i + 1; j < D.T; ++j) row[j] = 0.0f;
    }
    // dQ = scale dS K ; dK = scale dS^T Q
    cpu::sgemm(false, false, D.T, D.hd, D.T, scale, ds, D.T, k, ld, 0.0f, dq, ld);
    cpu::sgemm(true, false, D.T, D.hd, D.T, scale, ds, D.T, q, ld, 0.0f, dk, ld);
  }
}

}  // namespace mt::ops
