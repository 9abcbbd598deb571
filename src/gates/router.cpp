// The learned routers' linear map h = x W: computed where x lives (CPU or GPU), in fp32 whatever
// train.precision (Switch Transformer's selective precision), read on the host, where the routing
// decisions are made; its softmax and balance loss on the host; and their backward.
#include <cmath>

#include "gates/gate.hpp"
#include "tensor/ops.hpp"

namespace mt {

Tensor router_logits(Arena& arena, const Tensor& x, const Tensor& w) {
  Tensor h = arena.alloc({x.size(0), w.size(1)});
  const ops::Fp32Matmuls fp32;
  ops::matmul(x, false, w, false, h);
  return arena.to_host(h);
}

float softmax_row(float* row, int64_t n) {
  float mx = row[0];
  for (int64_t j = 1; j < n; ++j) mx = std::max(mx, row[j]);
  float s = 0;
  for (int64_t j = 0; j < n; ++j) s += (row[j] = std::exp(row[j] - mx));
  for (int64_t j = 0; j < n; ++j) row[j] /= s;
  return mx + std::log(s);
}

void softmax_rows_backward(const Tensor& p, const Tensor& dp, float scale) {
  const int64_t T = p.size(0), E = p.size(1);
  for (int64_t t = 0; t < T; ++t) {
    const float* row = p.f32() + t * E;
    float* d = dp.f32() + t * E;
    float dot = 0;
    for (int64_t j = 0; j < E; ++j) dot += row[j] * d[j];
    for (int64_t j = 0; j < E; ++j) d[j] = scale * row[j] * (d[j] - dot);
  }
}

double balance_loss(const Tensor& frac, const std::vector<double>& mass, double weight,
                    int64_t group_tokens, int64_t global_groups) {
  const int64_t E = frac.size(1);
  double aux = 0;
  for (int64_t i = 0; i < frac.numel(); ++i) aux += mass[i] / double(group_tokens) * frac.f32()[i];
  return weight * double(E) * aux / double(global_groups);
}

float balance_scale(double weight, int64_t num_experts, int64_t group_tokens,
                    int64_t global_groups) {
  return float(weight * double(num_experts) / (double(group_tokens) * double(global_groups)));
}

void router_backward(Arena& arena, const Tensor& x, const Tensor& dh, const Tensor& w,
                     const Tensor& dw, const Tensor& dx) {
  const Tensor g = arena.to_device(dh);
  const ops::Fp32Matmuls fp32;
  ops::matmul(x, true, g, false, dw, 1.0f, 1.0f);
  ops::matmul(g, false, w, true, dx, 1.0f, 1.0f);
}

}  // namespace mt
