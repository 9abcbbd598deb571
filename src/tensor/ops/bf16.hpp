// The CPU's bf16 GEMM (tensor/ops/bf16.cpp): inputs rounded to bf16 (nearest even), products
// accumulated in fp32, fp32 output; oneDNN's matmul primitive, one per layout (transposes,
// leading dimensions, alpha, beta) with the sizes given at run time, so varying expert batches
// reuse it. Operands inside the registered weights, or inside a shared operand, read their bf16
// copy; others are converted per call. Safe inside an OpenMP parallel region (runs on the calling
// thread there).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mt::cpu {

// Whether oneDNN finds AVX512_BF16 on this CPU; else `*found` names the ISA it found.
bool bf16_supported(std::string* found = nullptr);

// c = alpha * op(a) * op(b) + beta * c, as sgemm (tensor/ops/sgemm.hpp), in bf16; m, n, k > 0.
void bf16_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// The same on operands already rounded (their bf16 bits).
void bf16_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t* a,
               int64_t lda, const uint16_t* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The bf16 values of a stored rows x cols operand at leading dimension ld: the weights' copy or a
// shared operand's where it lies inside one, else rounded into `scratch` (same leading dimension).
const uint16_t* bf16_operand(const float* p, int64_t rows, int64_t cols, int64_t ld,
                             std::vector<uint16_t>& scratch);

// dst = src rounded to bf16 (to_bf16 below), rows x cols at each one's leading dimension; the
// threads share large ones outside a parallel region.
void round_to_bf16(const float* src, int64_t rows, int64_t cols, int64_t ld_src, uint16_t* dst,
                   int64_t ld_dst);

// Makes the bf16 copy of values[0, n) (the parameters) that bf16_gemm reads for any operand
// lying inside it, replacing the previous one.
void set_bf16_weights(const float* values, int64_t n);

// Drops the copy when [p, p + n) overlaps the registered weights: Buffer calls it as it frees
// memory, which could otherwise come back as another operand at the same address.
void forget_bf16_weights(const float* p, int64_t n);
// Whether p lies inside the registered weights.
bool bf16_weights_cover(const float* p);

// Makes the bf16 copy of [p, p + n), an operand that several products read in turn (an output
// gradient's two: dx and dW), which bf16_gemm then reads in place of converting it at each use,
// until unshare_bf16(p). Pairs nest (last made, first unmade); neither may be called inside an
// OpenMP parallel region, and the operand must not change in between.
void share_bf16(const float* p, int64_t n);
void unshare_bf16(const float* p);

// x rounded to bf16, to nearest even (NaN stays NaN), as the bits of the upper half of a float.
inline uint16_t to_bf16(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float from_bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float x;
  __builtin_memcpy(&x, &u, 4);
  return x;
}

}  // namespace mt::cpu
