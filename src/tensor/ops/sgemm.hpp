// The CPU's single-precision GEMM on raw row-major pointers (oneDNN; tensor/ops/blas.cpp), for the
// CPU ops that multiply views with their own leading dimensions (attention's heads). Safe to call
// inside an OpenMP parallel region: it then runs on the calling thread.
#pragma once
#include <cstdint>
#include <vector>

namespace mt::cpu {

// c = alpha * op(a) * op(b) + beta * c; op(a) is m x k, op(b) k x n, c m x n.
void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// For `moetrain bench step`'s GEMM-bound limit: while a log is set, every sgemm call appends its
// problem, its wall time and whether it ran inside a parallel region (from any thread); nullptr
// stops. Not for training runs.
struct GemmCall {
  bool ta, tb;
  int64_t m, n, k, lda, ldb, ldc;
  float alpha, beta;
  double seconds;
  bool nested;
};
void record_gemms(std::vector<GemmCall>* log);

}  // namespace mt::cpu
