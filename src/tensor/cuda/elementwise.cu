// Elementwise kernels, column sums, the sum of squares, bias + GELU and the AdamW update.
#include <vector>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/kernels.hpp"

namespace mt::cuda {

namespace {

constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)

#define GRID_STRIDE(i, n)                                                   \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

__global__ void fill_kernel(float* p, int64_t n, float v) {
  GRID_STRIDE(i, n) p[i] = v;
}

__global__ void add_kernel(const float* a, const float* b, float* o, int64_t n) {
  GRID_STRIDE(i, n) o[i] = a[i] + b[i];
}

__global__ void mul_kernel(const float* a, const float* b, float* o, int64_t n) {
  GRID_STRIDE(i, n) o[i] = a[i] * b[i];
}

__global__ void add_rows_kernel(float* y, const float* bias, int64_t n, int64_t cols) {
  GRID_STRIDE(i, n) y[i] += bias[i % cols];
}

__global__ void bias_gelu_kernel(float* y, const float* bias, float* act, int64_t n, int64_t cols) {
  GRID_STRIDE(i, n) {
    const float v = y[i] + bias[i % cols];
    y[i] = v;
    act[i] = 0.5f * v * (1.0f + tanhf(kGeluC * (v + 0.044715f * v * v * v)));
  }
}

__global__ void gelu_backward_kernel(const float* x, float* d, int64_t n) {
  GRID_STRIDE(i, n) {
    const float v = x[i];
    const float th = tanhf(kGeluC * (v + 0.044715f * v * v * v));
    const float du = kGeluC * (1.0f + 3.0f * 0.044715f * v * v);
    d[i] *= 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * du;
  }
}

__global__ void adamw_kernel(float* p, const float* grad, float* m, float* v, int64_t n, float lr,
                             float b1, float b2, float eps, float wd, float c1, float c2,
                             float gs) {
  GRID_STRIDE(i, n) {
    const float g = grad[i] * gs;
    const float mi = b1 * m[i] + (1.0f - b1) * g;
    const float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * ((mi / c1) / (sqrtf(vi / c2) + eps) + wd * p[i]);
  }
}

// Column sums of a [rows, cols] matrix, accumulated into out: a block of 32 x 8 threads per 32
// columns; thread row y sums rows y, y + 8, ... in order, then the 8 parts are added in order.
__global__ void column_sums_kernel(const float* a, float* out, int64_t rows, int64_t cols) {
  __shared__ float part[8][33];
  const int64_t j = int64_t(blockIdx.x) * 32 + threadIdx.x;
  float s = 0;
  if (j < cols)
    for (int64_t i = threadIdx.y; i < rows; i += 8) s += a[i * cols + j];
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && j < cols) {
    float t = 0;
    for (int y = 0; y < 8; ++y) t += part[y][threadIdx.x];
    out[j] += t;
  }
}

constexpr int kSquareBlocks = 256, kSquareThreads = 256;

__global__ void sum_squares_kernel(const float* p, int64_t n, double* parts) {
  double s = 0;
  GRID_STRIDE(i, n) s += double(p[i]) * p[i];
  s = block_sum(s);
  if (threadIdx.x == 0) parts[blockIdx.x] = s;
}

}  // namespace

void fill(float* p, int64_t n, float v) {
  fill_kernel<<<grid_for(n), 256, 0, cu_stream()>>>(p, n, v);
  check_launch("fill");
}

void add(const float* a, const float* b, float* out, int64_t n) {
  add_kernel<<<grid_for(n), 256, 0, cu_stream()>>>(a, b, out, n);
  check_launch("add");
}

void mul(const float* a, const float* b, float* out, int64_t n) {
  mul_kernel<<<grid_for(n), 256, 0, cu_stream()>>>(a, b, out, n);
  check_launch("mul");
}

void add_rows(float* y, const float* bias, int64_t rows, int64_t cols) {
  add_rows_kernel<<<grid_for(rows * cols), 256, 0, cu_stream()>>>(y, bias, rows * cols, cols);
  check_launch("add_rows");
}

void sum_rows_accumulate(const float* dy, float* db, int64_t rows, int64_t cols) {
  if (cols == 0) return;
  column_sums_kernel<<<unsigned((cols + 31) / 32), dim3(32, 8), 0, cu_stream()>>>(dy, db, rows,
                                                                                  cols);
  check_launch("column_sums");
}

double sum_squares(const float* p, int64_t n) {
  if (n == 0) return 0;
  auto* parts = static_cast<double*>(alloc(kSquareBlocks * sizeof(double)));
  sum_squares_kernel<<<kSquareBlocks, kSquareThreads, 0, cu_stream()>>>(p, n, parts);
  check_launch("sum_squares");
  std::vector<double> host(kSquareBlocks);
  copy(host.data(), parts, kSquareBlocks * sizeof(double));
  release(parts);
  double s = 0;
  for (double v : host) s += v;
  return s;
}

void bias_gelu(float* y, const float* bias, float* act, int64_t rows, int64_t cols) {
  bias_gelu_kernel<<<grid_for(rows * cols), 256, 0, cu_stream()>>>(y, bias, act, rows * cols, cols);
  check_launch("bias_gelu");
}

void gelu_backward_bias(const float* x, float* d, float* db, int64_t rows, int64_t cols) {
  gelu_backward_kernel<<<grid_for(rows * cols), 256, 0, cu_stream()>>>(x, d, rows * cols);
  check_launch("gelu_backward");
  sum_rows_accumulate(d, db, rows, cols);
}

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, float c1, float c2,
                  float grad_scale) {
  if (n == 0) return;
  adamw_kernel<<<grid_for(n), 256, 0, cu_stream()>>>(param, grad, m, v, n, lr, beta1, beta2, eps,
                                                     weight_decay, c1, c2, grad_scale);
  check_launch("adamw");
}

}  // namespace mt::cuda
