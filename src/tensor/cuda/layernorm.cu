// LayerNorm over the last dimension (eps 1e-5): forward and backward side by side. One block per
// row; the gamma and beta gradients are column sums in a fixed order.
#include "tensor/cuda/common.cuh"
#include "tensor/cuda/kernels.hpp"

namespace mt::cuda {

namespace {

constexpr float kEps = 1e-5f;

__global__ void layernorm_kernel(const float* x, const float* g, const float* b, float* y,
                                 float* mean, float* rstd, int64_t cols) {
  const int64_t i = blockIdx.x;
  const float* row = x + i * cols;
  float s = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += row[j];
  const float mu = block_sum(s) / float(cols);
  float v = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) v += (row[j] - mu) * (row[j] - mu);
  const float rs = rsqrtf(block_sum(v) / float(cols) + kEps);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    y[i * cols + j] = (row[j] - mu) * rs * g[j] + b[j];
  if (threadIdx.x == 0) mean[i] = mu, rstd[i] = rs;
}

// dx += rs (dy g - mean(dy g) - xhat mean(dy g xhat)), one block per row.
__global__ void layernorm_dx_kernel(const float* dy, const float* x, const float* g,
                                    const float* mean, const float* rstd, float* dx, int64_t cols) {
  const int64_t i = blockIdx.x;
  const float *row = x + i * cols, *drow = dy + i * cols;
  const float mu = mean[i], rs = rstd[i];
  float a = 0, c = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float dn = drow[j] * g[j];
    a += dn;
    c += dn * (row[j] - mu) * rs;
  }
  a = block_sum(a) / float(cols);
  c = block_sum(c) / float(cols);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float xhat = (row[j] - mu) * rs;
    dx[i * cols + j] += rs * (drow[j] * g[j] - a - xhat * c);
  }
}

// dgamma += sum_i dy xhat, dbeta += sum_i dy: 32 columns per block, 8 row strides, fixed order.
__global__ void layernorm_dparams_kernel(const float* dy, const float* x, const float* mean,
                                         const float* rstd, float* dg, float* db, int64_t rows,
                                         int64_t cols) {
  __shared__ float pg[8][33], pb[8][33];
  const int64_t j = int64_t(blockIdx.x) * 32 + threadIdx.x;
  float sg = 0, sb = 0;
  if (j < cols)
    for (int64_t i = threadIdx.y; i < rows; i += 8) {
      const float d = dy[i * cols + j];
      sg += d * (x[i * cols + j] - mean[i]) * rstd[i];
      sb += d;
    }
  pg[threadIdx.y][threadIdx.x] = sg;
  pb[threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y == 0 && j < cols) {
    float tg = 0, tb = 0;
    for (int y = 0; y < 8; ++y) tg += pg[y][threadIdx.x], tb += pb[y][threadIdx.x];
    dg[j] += tg;
    db[j] += tb;
  }
}

}  // namespace

void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                       float* rstd, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  layernorm_kernel<<<unsigned(rows), row_threads(std::min<int64_t>(cols, 512)), 0, cu_stream()>>>(
      x, gamma, beta, y, mean, rstd, cols);
  check_launch("layernorm");
}

void layernorm_backward(const float* dy, const float* x, const float* gamma, const float* mean,
                        const float* rstd, float* dx, float* dgamma, float* dbeta, int64_t rows,
                        int64_t cols) {
  if (rows == 0) return;
  layernorm_dx_kernel<<<unsigned(rows), row_threads(std::min<int64_t>(cols, 512)), 0,
                        cu_stream()>>>(dy, x, gamma, mean, rstd, dx, cols);
  check_launch("layernorm_dx");
  layernorm_dparams_kernel<<<unsigned((cols + 31) / 32), dim3(32, 8), 0, cu_stream()>>>(
      dy, x, mean, rstd, dgamma, dbeta, rows, cols);
  check_launch("layernorm_dparams");
}

}  // namespace mt::cuda
