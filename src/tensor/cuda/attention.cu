// Causal multi-head attention on packed qkv: per batch row, the heads as one strided-batched
// GEMM (head h of Q starts hd floats after head h - 1), and a causal softmax kernel per row of
// scores. Forward and backward side by side.
#include "tensor/cuda/common.cuh"
#include "tensor/cuda/kernels.hpp"

namespace mt::cuda {

namespace {

// probs rows of length T; row r is query position r % T: softmax over keys 0..i, zeros above.
__global__ void causal_softmax(float* probs, int64_t T) {
  const int64_t row = blockIdx.x, i = row % T;
  float* r = probs + row * T;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) mx = fmaxf(mx, r[j]);
  mx = block_max(mx);
  float s = 0;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
    const float e = expf(r[j] - mx);
    r[j] = e;
    s += e;
  }
  const float inv = 1.0f / block_sum(s);
  for (int64_t j = threadIdx.x; j < T; j += blockDim.x) r[j] = j <= i ? r[j] * inv : 0.0f;
}

// ds holds dP on entry and dS = P * (dP - rowsum(dP * P)) on exit; zeros above the diagonal.
__global__ void causal_softmax_backward(const float* probs, float* ds, int64_t T) {
  const int64_t row = blockIdx.x, i = row % T;
  const float* p = probs + row * T;
  float* r = ds + row * T;
  float dot = 0;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) dot += r[j] * p[j];
  dot = block_sum(dot);
  for (int64_t j = threadIdx.x; j < T; j += blockDim.x) r[j] = j <= i ? p[j] * (r[j] - dot) : 0.0f;
}

}  // namespace

void attention_forward(const float* qkv, float* out, float* probs, const float* mask,
                       float* dropped, int64_t B, int64_t T, int64_t H, int64_t hd) {
  const int64_t d = H * hd, ld = 3 * d, TT = T * T;
  const float scale = 1.0f / sqrtf(float(hd));
  for (int64_t b = 0; b < B; ++b) {
    const float* q = qkv + b * T * ld;
    float* p = probs + b * H * TT;
    gemm(false, true, T, T, hd, scale, q, ld, hd, q + d, ld, hd, 0.0f, p, T, TT, H);
  }
  causal_softmax<<<unsigned(B * H * T), row_threads(std::min<int64_t>(T, 256)), 0, cu_stream()>>>(
      probs, T);
  check_launch("causal_softmax");
  if (mask) mul(probs, mask, dropped, B * H * TT);
  const float* weights = mask ? dropped : probs;
  for (int64_t b = 0; b < B; ++b)
    gemm(false, false, T, hd, T, 1.0f, weights + b * H * TT, T, TT, qkv + b * T * ld + 2 * d, ld,
         hd, 0.0f, out + b * T * d, d, hd, H);
}

void attention_backward(const float* dout, const float* qkv, const float* probs, const float* mask,
                        const float* dropped, float* dqkv, float* scratch, int64_t B, int64_t T,
                        int64_t H, int64_t hd) {
  const int64_t d = H * hd, ld = 3 * d, TT = T * T;
  const float scale = 1.0f / sqrtf(float(hd));
  const float* weights = mask ? dropped : probs;
  for (int64_t b = 0; b < B; ++b) {
    const float *q = qkv + b * T * ld, *p = weights + b * H * TT, *dO = dout + b * T * d;
    float *dq = dqkv + b * T * ld, *ds = scratch + b * H * TT;
    // dV = P^T dO ; dP = dO V^T (P: the dropped probabilities with dropout)
    gemm(true, false, T, hd, T, 1.0f, p, T, TT, dO, d, hd, 0.0f, dq + 2 * d, ld, hd, H);
    gemm(false, true, T, T, hd, 1.0f, dO, d, hd, q + 2 * d, ld, hd, 0.0f, ds, T, TT, H);
  }
  if (mask) mul(scratch, mask, scratch, B * H * TT);  // back through the dropout
  causal_softmax_backward<<<unsigned(B * H * T), row_threads(std::min<int64_t>(T, 256)), 0,
                            cu_stream()>>>(probs, scratch, T);
  check_launch("causal_softmax_backward");
  for (int64_t b = 0; b < B; ++b) {
    const float *q = qkv + b * T * ld, *ds = scratch + b * H * TT;
    float* dq = dqkv + b * T * ld;
    // dQ = scale dS K ; dK = scale dS^T Q
    gemm(false, false, T, hd, T, scale, ds, T, TT, q + d, ld, hd, 0.0f, dq, ld, hd, H);
    gemm(true, false, T, hd, T, scale, ds, T, TT, q, ld, hd, 0.0f, dq + d, ld, hd, H);
  }
}

}  // namespace mt::cuda
