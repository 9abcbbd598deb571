// Softmax cross-entropy and THOR's symmetric KL, one block per row; the row values are summed on
// the host in row order.
#include <vector>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/kernels.hpp"

namespace mt::cuda {

namespace {

// dlogits may alias logits: every element is read by the thread that writes it, and the target
// logit is read before the first write (the reductions in between synchronise the block).
__global__ void cross_entropy_kernel(const float* logits, const int32_t* targets, float* dlogits,
                                     float* losses, int64_t V, float grad_scale, float smoothing) {
  const int64_t i = blockIdx.x;
  const float* row = logits + i * V;
  float* drow = dlogits + i * V;
  const int32_t t = targets[i];
  if (t < 0) {
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) drow[j] = 0.0f;
    if (threadIdx.x == 0) losses[i] = 0.0f;
    return;
  }
  const float target_logit = row[t];
  // Label smoothing: q = 1 - eps on the target, eps_i = eps / (V - 1) elsewhere.
  const float eps_i = smoothing / float(V - 1), on_target = 1.0f - smoothing - eps_i;
  float mx = -INFINITY, zsum = 0;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, row[j]), zsum += row[j];
  mx = block_max(mx);
  zsum = smoothing > 0 ? block_sum(zsum) : 0.0f;
  float s = 0;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) s += expf(row[j] - mx);
  s = block_sum(s);
  const float k = grad_scale / s;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x)
    drow[j] = expf(row[j] - mx) * k - eps_i * grad_scale - (j == t ? on_target * grad_scale : 0.0f);
  if (threadIdx.x == 0) losses[i] = logf(s) + mx - on_target * target_logit - eps_i * zsum;
}

__global__ void symmetric_kl_kernel(const float* z1, const float* z2, const int32_t* targets,
                                    float* dz1, float* dz2, float* rv, int64_t V,
                                    float grad_scale) {
  const int64_t i = blockIdx.x;
  const float *r1 = z1 + i * V, *r2 = z2 + i * V;
  float *g1 = dz1 + i * V, *g2 = dz2 + i * V;
  if (targets[i] < 0) {
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) g1[j] = g2[j] = 0.0f;
    if (threadIdx.x == 0) rv[i] = 0.0f;
    return;
  }
  float m1 = -INFINITY, m2 = -INFINITY;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x)
    m1 = fmaxf(m1, r1[j]), m2 = fmaxf(m2, r2[j]);
  m1 = block_max(m1);
  m2 = block_max(m2);
  float s1 = 0, s2 = 0;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x)
    s1 += expf(r1[j] - m1), s2 += expf(r2[j] - m2);
  const float lse1 = m1 + logf(block_sum(s1)), lse2 = m2 + logf(block_sum(s2));
  float kl12 = 0, kl21 = 0;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
    const float l1 = r1[j] - lse1, l2 = r2[j] - lse2;
    kl12 += expf(l1) * (l1 - l2);
    kl21 += expf(l2) * (l2 - l1);
  }
  kl12 = block_sum(kl12);
  kl21 = block_sum(kl21);
  const float h = 0.5f * grad_scale;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
    const float l1 = r1[j] - lse1, l2 = r2[j] - lse2, p1 = expf(l1), p2 = expf(l2);
    g1[j] = h * (p1 * (l1 - l2 - kl12) + p1 - p2);
    g2[j] = h * (p2 * (l2 - l1 - kl21) + p2 - p1);
  }
  if (threadIdx.x == 0) rv[i] = 0.5f * (kl12 + kl21);
}

// Sums the row values on the host in row order; counts the rows with a target when asked.
double host_row_sum(const float* values, const int32_t* targets, int64_t n, int64_t* count) {
  std::vector<float> v(n);
  std::vector<int32_t> t(n);
  copy(v.data(), values, n * sizeof(float));
  copy(t.data(), targets, n * sizeof(int32_t));
  double total = 0;
  int64_t c = 0;
  for (int64_t i = 0; i < n; ++i)
    if (t[i] >= 0) total += v[i], ++c;
  if (count) *count = c;
  return total;
}

}  // namespace

double cross_entropy(const float* logits, const int32_t* targets, float* dlogits, float* losses,
                     int64_t n, int64_t V, float grad_scale, float smoothing, int64_t* count) {
  if (n > 0) {
    cross_entropy_kernel<<<unsigned(n), row_threads(std::min<int64_t>(V, 1024)), 0, cu_stream()>>>(
        logits, targets, dlogits, losses, V, grad_scale, smoothing);
    check_launch("cross_entropy");
  }
  return host_row_sum(losses, targets, n, count);
}

double symmetric_kl(const float* z1, const float* z2, const int32_t* targets, float* dz1,
                    float* dz2, float* row_values, int64_t n, int64_t V, float grad_scale) {
  if (n > 0) {
    symmetric_kl_kernel<<<unsigned(n), row_threads(std::min<int64_t>(V, 1024)), 0, cu_stream()>>>(
        z1, z2, targets, dz1, dz2, row_values, V, grad_scale);
    check_launch("symmetric_kl");
  }
  return host_row_sum(row_values, targets, n, nullptr);
}

}  // namespace mt::cuda
