// Token + position embedding: forward and backward side by side.
#include <vector>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/dispatch.hpp"

namespace mt::ops {

void embedding_forward(const Tensor& tokens, const Tensor& wte, const Tensor& wpe,
                       const Tensor& out) {
  const int64_t B = tokens.size(0), T = tokens.size(1), d = wte.size(1), V = wte.size(0);
  MT_CHECK(T <= wpe.size(0) && out.numel() == B * T * d, "embedding: tokens {} wpe {} out {}",
           tokens.shape.str(), wpe.shape.str(), out.shape.str());
  std::vector<int32_t> host;  // token ids on the GPU are checked on a host copy
  const int32_t* tok = tokens.i32();
  if (tokens.device == Device::CUDA) {
    host.resize(B * T);
    copy(tokens, Tensor{host.data(), tokens.shape, DType::I32, Device::CPU});
    tok = host.data();
  }
  for (int64_t i = 0; i < B * T; ++i)
    MT_CHECK(tok[i] >= 0 && tok[i] < V, "embedding: token id {} outside vocabulary [0, {})", tok[i],
             V);
  MT_ON_CUDA(out, embedding_forward(tokens.i32(), wte.f32(), wpe.f32(), out.f32(), B * T, T, d));
  const float *e = wte.f32(), *p = wpe.f32();
  float* o = out.f32();
#pragma omp parallel for if (B * T * d > 65536)
  for (int64_t i = 0; i < B * T; ++i) {
    const float *er = e + int64_t(tok[i]) * d, *pr = p + (i % T) * d;
    float* orow = o + i * d;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) orow[j] = er[j] + pr[j];
  }
}

void embedding_backward(const Tensor& tokens, const Tensor& dout, const Tensor& dwte,
                        const Tensor& dwpe) {
  const int64_t B = tokens.size(0), T = tokens.size(1), d = dwte.size(1);
  MT_CHECK(dout.numel() == B * T * d && dwpe.size(0) >= T, "embedding_backward: dout {} dwpe {}",
           dout.shape.str(), dwpe.shape.str());
  MT_ON_CUDA(dwte,
             embedding_backward(tokens.i32(), dout.f32(), dwte.f32(), dwpe.f32(), B * T, T, d));
  const int32_t* tok = tokens.i32();
  const float* g = dout.f32();
  float *de = dwte.f32(), *dp = dwpe.f32();
  // Positions: each thread owns whole rows of dwpe, summed over the batch in order.
#pragma omp parallel for if (B * T * d > 65536)
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b) {
      const float* gr = g + (b * T + t) * d;
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) dp[t * d + j] += gr[j];
    }
    // Tokens: columns split over threads so that two rows with the same id never race; each column
    // is accumulated in token order, so the result does not depend on the thread count.
#pragma omp parallel for if (B * T * d > 65536)
  for (int64_t j0 = 0; j0 < d; j0 += 16) {
    const int64_t w = std::min<int64_t>(16, d - j0);
    for (int64_t i = 0; i < B * T; ++i) {
      const float* gr = g + i * d + j0;
      float* row = de + int64_t(tok[i]) * d + j0;
      for (int64_t j = 0; j < w; ++j) row[j] += gr[j];
    }
  }
}

}  // namespace mt::ops
