// Shared pieces of the CUDA kernels: the rank's stream, launch geometry, error checks after a
// launch, and warp / block reductions (every thread of the block gets the result).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "tensor/cuda/runtime.hpp"

namespace mt::cuda {

inline cudaStream_t cu_stream() {
  return static_cast<cudaStream_t>(stream());
}

// Grid for a grid-stride loop over n elements.
inline unsigned grid_for(int64_t n, int threads = 256) {
  return unsigned(std::clamp<int64_t>((n + threads - 1) / threads, 1, 65535));
}

inline void check_launch(const char* kernel) {
  check(cudaGetLastError(), kernel);
}

template <typename T>
__device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ inline float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// blockDim.x must be a multiple of 32. The warps' partial results are combined in warp order.
template <typename T>
__device__ inline T block_sum(T v) {
  __shared__ T part[32];
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();  // the previous call's readers are done with part[]
  if (lane == 0) part[warp] = v;
  __syncthreads();
  return warp_sum(lane < warps ? part[lane] : T(0));
}

__device__ inline float block_max(float v) {
  __shared__ float part[32];
  v = warp_max(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  return warp_max(lane < warps ? part[lane] : -INFINITY);
}

// Threads for a block that walks a row of n elements: a multiple of 32, at most 1024.
inline int row_threads(int64_t n) {
  return int(std::clamp<int64_t>((n + 31) / 32 * 32, 32, 1024));
}

}  // namespace mt::cuda
