// Row gathers and the weighted combine of the MoE layer, forward and backward side by side.
#include <cstring>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/dispatch.hpp"

namespace mt::ops {

void gather_rows(const Tensor& src, const Tensor& index, const Tensor& out) {
  const int64_t d = src.size(-1), n = index.numel();
  MT_CHECK(out.numel() == n * d && out.size(-1) == d, "gather_rows: {} rows of {} into {}", n,
           src.shape.str(), out.shape.str());
  MT_ON_CUDA(out, gather_rows(src.f32(), index.i32(), out.f32(), n, d));
  const int32_t* idx = index.i32();
  for (int64_t a = 0; a < n; ++a)
    std::memcpy(out.f32() + a * d, src.f32() + int64_t(idx[a]) * d, sizeof(float) * d);
}

void combine_rows(const Tensor& src, const Tensor& slot, const Tensor& weight, const Tensor& out) {
  const int64_t T = out.size(0), d = out.size(-1);
  const int k = int(slot.numel() / std::max<int64_t>(T, 1));
  MT_CHECK(slot.numel() == T * k && (!weight.data || weight.numel() == T * k) && src.size(-1) == d,
           "combine_rows: src {} slot {} out {}", src.shape.str(), slot.shape.str(),
           out.shape.str());
  const float* w = weight.data ? weight.f32() : nullptr;
  MT_ON_CUDA(out, combine_rows(src.f32(), slot.i32(), w, out.f32(), T, k, d));
  const int32_t* s = slot.i32();
  for (int64_t t = 0; t < T; ++t)
    for (int j = 0; j < k; ++j) {
      const int32_t a = s[t * k + j];
      if (a < 0) continue;
      const float* from = src.f32() + int64_t(a) * d;
      float* to = out.f32() + t * d;
      if (!w) {
        for (int64_t i = 0; i < d; ++i) to[i] += from[i];
        continue;
      }
      const float wt = w[t * k + j];
      for (int64_t i = 0; i < d; ++i) to[i] += wt * from[i];
    }
}

void combine_rows_backward(const Tensor& dy, const Tensor& src, const Tensor& slot,
                           const Tensor& weight, const Tensor& dsrc, const Tensor& dweight) {
  const int64_t T = dy.size(0), d = dy.size(-1);
  const int k = int(slot.numel() / std::max<int64_t>(T, 1));
  MT_CHECK(slot.numel() == T * k && weight.numel() == T * k && dweight.numel() == T * k &&
               src.size(-1) == d && dsrc.numel() == src.numel(),
           "combine_rows_backward: dy {} src {} slot {}", dy.shape.str(), src.shape.str(),
           slot.shape.str());
  MT_ON_CUDA(dy, combine_rows_backward(dy.f32(), src.f32(), slot.i32(), weight.f32(), dsrc.f32(),
                                       dweight.f32(), T, k, d));
  const int32_t* s = slot.i32();
  const float* w = weight.f32();
  for (int64_t t = 0; t < T; ++t)
    for (int j = 0; j < k; ++j) {
      const int32_t a = s[t * k + j];
      if (a < 0) continue;
      const float *g = dy.f32() + t * d, *out = src.f32() + int64_t(a) * d;
      float* db = dsrc.f32() + int64_t(a) * d;
      float dot = 0;
      for (int64_t i = 0; i < d; ++i) {
        dot += g[i] * out[i];
        db[i] = w[t * k + j] * g[i];
      }
      dweight.f32()[t * k + j] = dot;
    }
}

}  // namespace mt::ops
