// Causal multi-head self-attention on packed qkv: forward and backward side by side.
// Each (batch, head) pair is independent: OpenMP over pairs; each pair's GEMMs run serially on its
// thread. Causal: the queries go in blocks of kBlock rows, and a block's products stop at its last
// key, so the square's upper blocks are neither multiplied nor read. In bf16 a pair rounds each
// operand once, on its thread, for all the products that read it.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/bf16.hpp"
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

constexpr int64_t kBlock = 64;  // query rows per causal block

// A matrix view as a pair's products read it: E = float, the tensor in place; E = uint16_t, its
// copy rounded to bf16 on this thread.
template <typename E>
struct View {
  const E* p;
  int64_t ld;
  View at(int64_t row, int64_t col = 0) const { return {p + row * ld + col, ld}; }
};

// Slot `slot` of this thread's rounded operands (kept between calls).
std::vector<uint16_t>& rounded(int slot) {
  thread_local std::vector<uint16_t> buffers[5];
  return buffers[slot];
}

template <typename E>
View<E> stage(const float* p, int64_t rows, int64_t cols, int64_t ld, int slot) {
  if constexpr (std::is_same_v<E, float>) {
    return {p, ld};
  } else {
    std::vector<uint16_t>& buf = rounded(slot);
    if (int64_t(buf.size()) < rows * cols) buf.resize(size_t(rows * cols));
    cpu::round_to_bf16(p, rows, cols, ld, buf.data(), cols);
    return {buf.data(), cols};
  }
}

// c = alpha * op(a) op(b), c at leading dimension ldc.
template <typename E>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, View<E> a, View<E> b,
          float* c, int64_t ldc) {
  cpu::sgemm(ta, tb, m, n, k, alpha, a.p, a.ld, b.p, b.ld, 0.0f, c, ldc);
}

// One pair's forward: p [T, T] the probabilities, w the values' weights (p, or the dropped
// probabilities w = p * m with a dropout mask m), o [T, hd] at leading dimension ldo.
template <typename E>
void forward_pair(const Dims& D, float scale, const float* q, int64_t ld, float* p, const float* m,
                  float* w, float* o, int64_t ldo) {
  const int64_t T = D.T, hd = D.hd;
  const View<E> Q = stage<E>(q, T, hd, ld, 0), K = stage<E>(q + D.d, T, hd, ld, 1),
                V = stage<E>(q + 2 * D.d, T, hd, ld, 2);
  for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
    const int64_t r1 = std::min(T, r0 + kBlock);
    // Scores S = scale * Q K^T over the keys up to the block's last; masked beyond the diagonal.
    gemm(false, true, r1 - r0, r1, hd, scale, Q.at(r0), K, p + r0 * T, T);
    for (int64_t i = r0; i < r1; ++i) {
      float* row = p + i * T;
      float mx = row[0];
#pragma omp simd reduction(max : mx)
      for (int64_t j = 1; j <= i; ++j) mx = std::max(mx, row[j]);
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j <= i; ++j) {
        row[j] = cpu::fast_exp(row[j] - mx);
        s += row[j];
      }
      const float inv = 1.0f / s;
      for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
      std::fill(row + i + 1, row + T, 0.0f);
    }
  }
  if (m)
    for (int64_t i = 0; i < T * T; ++i) w[i] = p[i] * m[i];
  const View<E> W = stage<E>(w, T, T, T, 3);
  for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
    const int64_t r1 = std::min(T, r0 + kBlock);
    gemm(false, false, r1 - r0, hd, r1, 1.0f, W.at(r0), V, o + r0 * ldo, ldo);
  }
}

// One pair's backward: dq (with dk, dv beside it at ld) from dout [T, hd] at leading dimension
// lddo; p, m and w as in the forward, ds [T, T] scratch.
template <typename E>
void backward_pair(const Dims& D, float scale, const float* q, const float* dout, int64_t lddo,
                   const float* p, const float* m, const float* w, float* ds, float* dq,
                   int64_t ld) {
  const int64_t T = D.T, hd = D.hd;
  float *dk = dq + D.d, *dv = dq + 2 * D.d;
  const View<E> Q = stage<E>(q, T, hd, ld, 0), K = stage<E>(q + D.d, T, hd, ld, 1),
                V = stage<E>(q + 2 * D.d, T, hd, ld, 2), W = stage<E>(w, T, T, T, 3),
                dO = stage<E>(dout, T, hd, lddo, 4);
  for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
    const int64_t r1 = std::min(T, r0 + kBlock);
    // dV = W^T dO over the queries from the block's first on (earlier ones weigh these keys 0).
    gemm(true, false, r1 - r0, hd, T - r0, 1.0f, W.at(r0, r0), dO.at(r0), dv + r0 * ld, ld);
    // dW = dO V^T, dP = dW * mask, dS = P * (dP - rowsum(dP * P)); masked entries have P = 0.
    gemm(false, true, r1 - r0, r1, hd, 1.0f, dO.at(r0), V, ds + r0 * T, T);
    for (int64_t i = r0; i < r1; ++i) {
      const float* prow = p + i * T;
      float* row = ds + i * T;
      if (m)
        for (int64_t j = 0; j <= i; ++j) row[j] *= m[i * T + j];
      float dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t j = 0; j <= i; ++j) dot += row[j] * prow[j];
      for (int64_t j = 0; j <= i; ++j) row[j] = prow[j] * (row[j] - dot);
      std::fill(row + i + 1, row + T, 0.0f);
    }
  }
  // dQ = scale dS K ; dK = scale dS^T Q (dS rounded into W's slot, which no product reads now)
  const View<E> dS = stage<E>(ds, T, T, T, 3);
  for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
    const int64_t r1 = std::min(T, r0 + kBlock);
    gemm(false, false, r1 - r0, hd, r1, scale, dS.at(r0), K, dq + r0 * ld, ld);
    gemm(true, false, r1 - r0, hd, T - r0, scale, dS.at(r0, r0), Q.at(r0), dk + r0 * ld, ld);
  }
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
  const bool bf16 = bf16_matmul();
  const int64_t ld = 3 * D.d, TT = D.T * D.T;
#pragma omp parallel for schedule(dynamic)
  for (int64_t bh = 0; bh < D.B * D.H; ++bh) {
    const int64_t b = bh / D.H, h = bh % D.H;
    const float* q = qkv.f32() + b * D.T * ld + h * D.hd;
    float* p = probs.f32() + bh * TT;
    const float* m = mask.empty() ? nullptr : mask.f32() + bh * TT;
    float* w = m ? dropped.f32() + bh * TT : p;
    float* o = out.f32() + b * D.T * D.d + h * D.hd;
    if (bf16)
      forward_pair<uint16_t>(D, scale, q, ld, p, m, w, o, D.d);
    else
      forward_pair<float>(D, scale, q, ld, p, m, w, o, D.d);
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
  const float scale = 1.0f / std::sqrt(float(D.hd));
  const bool bf16 = bf16_matmul();
  const int64_t ld = 3 * D.d, TT = D.T * D.T;
#pragma omp parallel for schedule(dynamic)
  for (int64_t bh = 0; bh < D.B * D.H; ++bh) {
    const int64_t b = bh / D.H, h = bh % D.H;
    const int64_t off = b * D.T * ld + h * D.hd;
    const float* p = probs.f32() + bh * TT;
    const float* m = mask.empty() ? nullptr : mask.f32() + bh * TT;
    const float* w = m ? dropped.f32() + bh * TT : p;
    const float* dout_bh = dout.f32() + b * D.T * D.d + h * D.hd;
    float* ds = scratch.f32() + bh * TT;
    if (bf16)
      backward_pair<uint16_t>(D, scale, qkv.f32() + off, dout_bh, D.d, p, m, w, ds,
                              dqkv.f32() + off, ld);
    else
      backward_pair<float>(D, scale, qkv.f32() + off, dout_bh, D.d, p, m, w, ds, dqkv.f32() + off,
                           ld);
  }
}

}  // namespace mt::ops
