// Dropout masks from Philox: four elements per Philox block, drawn on the host.
#include "model/dropout.hpp"

#include "tensor/ops.hpp"
#include "tensor/rng.hpp"

namespace mt {

Tensor dropout_mask(Arena& arena, const DropoutSite& site, const Shape& shape, int64_t first) {
  if (!site.active()) return {};
  const RouteContext& c = *site.pass;
  const uint64_t stream = stream_id({name_hash("dropout"), name_hash(site.purpose),
                                     uint64_t(c.step), uint64_t(c.pass), uint64_t(site.layer)});
  Tensor mask = arena.host().alloc(shape);
  float* m = mask.f32();
  const int64_t n = mask.numel();
  const float keep = 1.0f / (1.0f - site.p);
  // Global element g is word g % 4 of Philox block g / 4.
  const int64_t begin = first / 4, end = (first + n + 3) / 4;
#pragma omp parallel for if (n > 65536)
  for (int64_t b = begin; b < end; ++b) {
    const auto words = philox4x32(c.seed, stream, uint64_t(b));
    for (int64_t w = 0; w < 4; ++w) {
      const int64_t i = b * 4 + w - first;
      if (i >= 0 && i < n) m[i] = u32_to_unit(words[w]) < site.p ? 0.0f : keep;
    }
  }
  return arena.to_device(mask);
}

Tensor apply_mask(Arena& arena, const Tensor& x, const Tensor& mask) {
  if (mask.empty()) return x;
  Tensor y = arena.alloc(x.shape);
  ops::mul(x, mask, y);
  return y;
}

}  // namespace mt
