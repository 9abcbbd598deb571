// Language-model loss on top of ops::cross_entropy.
#include "model/loss.hpp"

#include "tensor/ops.hpp"

namespace mt {

LossValue lm_loss(Arena& arena, const Tensor& logits, const Tensor& targets, double normalizer) {
  if (normalizer <= 0) {
    const int32_t* y = targets.i32();
    for (int64_t i = 0; i < targets.numel(); ++i) normalizer += y[i] >= 0;
  }
  Tensor losses = arena.alloc({targets.numel()});
  LossValue out;
  const float scale = normalizer > 0 ? float(1.0 / normalizer) : 0.0f;
  out.sum = ops::cross_entropy(logits, targets, logits, losses, scale, &out.count);
  return out;
}

}  // namespace mt
