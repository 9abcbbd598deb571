// Row gathers and the weighted combine of the MoE layer, forward and backward side by side.
#include "tensor/cuda/common.cuh"
#include "tensor/cuda/kernels.hpp"

namespace mt::cuda {

namespace {

__global__ void gather_rows_kernel(const float* src, const int32_t* index, float* out, int64_t n,
                                   int64_t d) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n * d;
       e += int64_t(gridDim.x) * blockDim.x)
    out[e] = src[int64_t(index[e / d]) * d + e % d];
}

// One thread per element of out; the choices of a token are added in order.
__global__ void combine_rows_kernel(const float* src, const int32_t* slot, const float* weight,
                                    float* out, int64_t T, int k, int64_t d) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < T * d;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = e / d, i = e % d;
    float acc = out[e];
    for (int j = 0; j < k; ++j) {
      const int32_t a = slot[t * k + j];
      if (a >= 0) acc += (weight ? weight[t * k + j] : 1.0f) * src[int64_t(a) * d + i];
    }
    out[e] = acc;
  }
}

// One block per (token, choice).
__global__ void combine_rows_backward_kernel(const float* dy, const float* src, const int32_t* slot,
                                             const float* weight, float* dsrc, float* dweight,
                                             int k, int64_t d) {
  const int64_t pair = blockIdx.x, t = pair / k;
  const int32_t a = slot[pair];
  if (a < 0) return;
  const float *g = dy + t * d, *out = src + int64_t(a) * d;
  float* db = dsrc + int64_t(a) * d;
  const float w = weight[pair];
  float dot = 0;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    dot += g[i] * out[i];
    db[i] = w * g[i];
  }
  dot = block_sum(dot);
  if (threadIdx.x == 0) dweight[pair] = dot;
}

}  // namespace

void gather_rows(const float* src, const int32_t* index, float* out, int64_t n, int64_t d) {
  if (n * d == 0) return;
  gather_rows_kernel<<<grid_for(n * d), 256, 0, cu_stream()>>>(src, index, out, n, d);
  check_launch("gather_rows");
}

void combine_rows(const float* src, const int32_t* slot, const float* weight, float* out, int64_t T,
                  int k, int64_t d) {
  if (T * d == 0) return;
  combine_rows_kernel<<<grid_for(T * d), 256, 0, cu_stream()>>>(src, slot, weight, out, T, k, d);
  check_launch("combine_rows");
}

void combine_rows_backward(const float* dy, const float* src, const int32_t* slot,
                           const float* weight, float* dsrc, float* dweight, int64_t T, int k,
                           int64_t d) {
  if (T * k == 0) return;
  combine_rows_backward_kernel<<<unsigned(T * k), row_threads(std::min<int64_t>(d, 256)), 0,
                                 cu_stream()>>>(dy, src, slot, weight, dsrc, dweight, k, d);
  check_launch("combine_rows_backward");
}

}  // namespace mt::cuda
