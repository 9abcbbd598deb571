// GEMMs through cublasGemmEx / cublasGemmStridedBatchedEx on row-major matrices.
#include <cublas_v2.h>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/kernels.hpp"

namespace mt::cuda {

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta,
          float* c, int64_t ldc, int64_t stride_c, int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  auto handle = static_cast<cublasHandle_t>(blas());
  const cublasComputeType_t compute =
      bf16_matmul() ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
  // A row-major C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T: swap the operands.
  const cublasOperation_t ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (batch == 1) {
    check_blas(cublasGemmEx(handle, ob, oa, int(n), int(m), int(k), &alpha, b, CUDA_R_32F, int(ldb),
                            a, CUDA_R_32F, int(lda), &beta, c, CUDA_R_32F, int(ldc), compute,
                            CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
    return;
  }
  check_blas(cublasGemmStridedBatchedEx(handle, ob, oa, int(n), int(m), int(k), &alpha, b,
                                        CUDA_R_32F, int(ldb), stride_b, a, CUDA_R_32F, int(lda),
                                        stride_a, &beta, c, CUDA_R_32F, int(ldc), stride_c,
                                        int(batch), compute, CUBLAS_GEMM_DEFAULT),
             "cublasGemmStridedBatchedEx");
}

}  // namespace mt::cuda
