// Softmax cross-entropy with its gradient in one pass over the logits.
#include <cmath>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/dispatch.hpp"
#include "tensor/ops/fast_math.hpp"

namespace mt::ops {

double cross_entropy(const Tensor& logits, const Tensor& targets, const Tensor& dlogits,
                     const Tensor& losses, float grad_scale, int64_t* count, float smoothing) {
  const int64_t V = logits.size(-1), N = logits.numel() / V;
  MT_CHECK(targets.numel() == N && dlogits.numel() == logits.numel() && losses.numel() == N,
           "cross_entropy: logits {} targets {} losses {}", logits.shape.str(), targets.shape.str(),
           losses.shape.str());
  MT_CHECK(smoothing >= 0 && smoothing < 1 && V > 1, "cross_entropy: label smoothing {} over {}",
           smoothing, V);
  MT_ON_CUDA(logits, cross_entropy(logits.f32(), targets.i32(), dlogits.f32(), losses.f32(), N, V,
                                   grad_scale, smoothing, count));
  // q: 1 - eps on the target, eps_i = eps / (V - 1) elsewhere; -sum_v q_v log p_v
  // = lse - (1 - eps - eps_i) z_t - eps_i sum_v z_v.
  const float eps_i = smoothing / float(V - 1), on_target = 1.0f - smoothing - eps_i;
  const float* x = logits.f32();
  const int32_t* y = targets.i32();
  float *dx = dlogits.f32(), *per_row = losses.f32();
#pragma omp parallel for
  for (int64_t i = 0; i < N; ++i) {
    const float* row = x + i * V;
    float* drow = dx + i * V;
    const int32_t t = y[i];
    if (t < 0) {
      for (int64_t j = 0; j < V; ++j) drow[j] = 0.0f;
      per_row[i] = 0.0f;
      continue;
    }
    const float target_logit = row[t];
    float zsum = 0;
    if (smoothing > 0) {
#pragma omp simd reduction(+ : zsum)
      for (int64_t j = 0; j < V; ++j) zsum += row[j];
    }
    float mx = row[0];
#pragma omp simd reduction(max : mx)
    for (int64_t j = 1; j < V; ++j) mx = std::max(mx, row[j]);
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < V; ++j) {
      drow[j] = cpu::fast_exp(row[j] - mx);  // row may alias drow: read before write
      s += drow[j];
    }
    const float k = grad_scale / s;
    if (smoothing > 0) {
      per_row[i] = std::log(s) + mx - on_target * target_logit - eps_i * zsum;
      const float off = eps_i * grad_scale;
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) drow[j] = drow[j] * k - off;
      drow[t] -= on_target * grad_scale;
    } else {
      per_row[i] = std::log(s) + mx - target_logit;
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) drow[j] *= k;
      drow[t] -= grad_scale;
    }
  }
  double total = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < N; ++i)
    if (y[i] >= 0) {
      total += per_row[i];
      ++n;
    }
  if (count) *count = n;
  return total;
}

}  // namespace mt::ops
