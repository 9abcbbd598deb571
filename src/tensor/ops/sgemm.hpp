// The CPU's single-precision GEMM on raw row-major pointers (tensor/ops/blas.cpp: oneDNN or
// OpenBLAS, one library for the whole process), for the CPU ops that multiply views with their
// own leading dimensions (attention's heads). Safe to call inside an OpenMP parallel region: it
// then runs on the calling thread.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mt::cpu {

// The library behind every fp32 CPU product. One for the process, never chosen per call or by
// timing, so a run stays a pure function of its config and machine.
enum class Gemm { OneDnn, OpenBlas };
void set_gemm(Gemm g);
Gemm gemm();
// train.cpu_gemm = auto: OpenBLAS where it runs its AMD Zen kernels (the demo's step 1.2x
// oneDNN's on an EPYC), oneDNN elsewhere (ahead on Intel Cooperlake; OpenBLAS falls back to SSE3
// on Intel CPUs it does not know).
Gemm gemm_for_core(const std::string& openblas_core);
// The kernel set OpenBLAS picked for this CPU ("Zen", "SkylakeX", "Prescott", ...).
std::string openblas_core();
const char* gemm_name(Gemm g);  // "onednn" | "openblas"

// c = alpha * op(a) * op(b) + beta * c; op(a) is m x k, op(b) k x n, c m x n.
void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// The same on operands already rounded to bf16 (their bits, cpu::round_to_bf16), for ops that
// round an operand once for several products: oneDNN's bf16 matmul, fp32 accumulation.
void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t* a,
           int64_t lda, const uint16_t* b, int64_t ldb, float beta, float* c, int64_t ldc);

// For `moetrain bench step`'s GEMM-bound limit: while a log is set, every sgemm call appends its
// problem, its wall time and whether it ran inside a parallel region (from any thread); nullptr
// stops. Not for training runs.
struct GemmCall {
  bool ta, tb, bf16_operands;
  int64_t m, n, k, lda, ldb, ldc;
  float alpha, beta;
  double seconds;
  bool nested;
};
void record_gemms(std::vector<GemmCall>* log);

}  // namespace mt::cpu
