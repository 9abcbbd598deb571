// GEMM on 2-D views of tensors: OpenBLAS cblas_sgemm on CPU, cuBLAS on CUDA.
#include <cblas.h>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/dispatch.hpp"

namespace mt::ops {

void matmul(const Tensor& a, bool ta, const Tensor& b, bool tb, const Tensor& c, float alpha,
            float beta) {
  const int64_t ac = a.size(-1), ar = a.numel() / ac;
  const int64_t bc = b.size(-1), br = b.numel() / bc;
  const int64_t m = ta ? ac : ar, k = ta ? ar : ac;
  const int64_t n = tb ? br : bc, k2 = tb ? bc : br;
  MT_CHECK(k == k2 && c.size(-1) == n && c.numel() == m * n,
           "matmul: {}{} x {}{} -> {} does not fit", a.shape.str(), ta ? "^T" : "", b.shape.str(),
           tb ? "^T" : "", c.shape.str());
  MT_ON_CUDA(c,
             gemm(ta, tb, m, n, k, alpha, a.f32(), ac, 0, b.f32(), bc, 0, beta, c.f32(), n, 0, 1));
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a.f32(), ac, b.f32(), bc, beta, c.f32(), n);
}

}  // namespace mt::ops
