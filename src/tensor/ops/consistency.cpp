// THOR's consistency term: the symmetric KL between the softmaxes of two logit tensors, with its
// gradient with respect to both, in one pass over the rows.
#include <cmath>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/dispatch.hpp"
#include "tensor/ops/fast_math.hpp"

namespace mt::ops {

double symmetric_kl(const Tensor& z1, const Tensor& z2, const Tensor& targets, const Tensor& dz1,
                    const Tensor& dz2, const Tensor& row_values, float grad_scale) {
  const int64_t V = z1.size(-1), N = z1.numel() / V;
  MT_CHECK(z2.numel() == z1.numel() && dz1.numel() == z1.numel() && dz2.numel() == z1.numel() &&
               targets.numel() == N && row_values.numel() == N,
           "symmetric_kl: z1 {} z2 {} targets {}", z1.shape.str(), z2.shape.str(),
           targets.shape.str());
  MT_ON_CUDA(z1, symmetric_kl(z1.f32(), z2.f32(), targets.i32(), dz1.f32(), dz2.f32(),
                              row_values.f32(), N, V, grad_scale));
  const float *a = z1.f32(), *b = z2.f32();
  const int32_t* y = targets.i32();
  float *da = dz1.f32(), *db = dz2.f32(), *rv = row_values.f32();
#pragma omp parallel for
  for (int64_t i = 0; i < N; ++i) {
    const float *r1 = a + i * V, *r2 = b + i * V;
    float *g1 = da + i * V, *g2 = db + i * V;
    if (y[i] < 0) {
      for (int64_t j = 0; j < V; ++j) g1[j] = g2[j] = 0.0f;
      rv[i] = 0.0f;
      continue;
    }
    float m1 = r1[0], m2 = r2[0];
    for (int64_t j = 1; j < V; ++j) m1 = std::max(m1, r1[j]), m2 = std::max(m2, r2[j]);
    float s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
    for (int64_t j = 0; j < V; ++j)
      s1 += cpu::fast_exp(r1[j] - m1), s2 += cpu::fast_exp(r2[j] - m2);
    const float lse1 = m1 + std::log(s1), lse2 = m2 + std::log(s2);
    // With L = log P1 - log P2: KL12 = sum P1 L, KL21 = -sum P2 L, CR = (KL12 + KL21) / 2.
    float kl12 = 0, kl21 = 0;
#pragma omp simd reduction(+ : kl12, kl21)
    for (int64_t j = 0; j < V; ++j) {
      const float l1 = r1[j] - lse1, l2 = r2[j] - lse2;
      kl12 += cpu::fast_exp(l1) * (l1 - l2);
      kl21 += cpu::fast_exp(l2) * (l2 - l1);
    }
    rv[i] = 0.5f * (kl12 + kl21);
    // dCR/dz1 = (P1 (L - KL12) + P1 - P2) / 2, and symmetrically for z2.
    const float h = 0.5f * grad_scale;
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) {
      const float l1 = r1[j] - lse1, l2 = r2[j] - lse2;
      const float p1 = cpu::fast_exp(l1), p2 = cpu::fast_exp(l2);
      g1[j] = h * (p1 * (l1 - l2 - kl12) + p1 - p2);
      g2[j] = h * (p2 * (l2 - l1 - kl21) + p2 - p1);
    }
  }
  double total = 0;
  for (int64_t i = 0; i < N; ++i) total += rv[i];
  return total;
}

}  // namespace mt::ops
