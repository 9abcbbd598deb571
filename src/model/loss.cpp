// Language-model loss on top of ops::cross_entropy.
#include "model/loss.hpp"

#include "tensor/ops.hpp"

namespace mt {

LossValue lm_loss(Arena& arena, const Tensor& logits, const Tensor& targets, double normalizer,
                  float smoothing) {
  if (normalizer <= 0) {
    const int32_t* y = targets.i32();
    for (int64_t i = 0; i < targets.numel(); ++i) normalizer += y[i] >= 0;
  }
  Tensor losses = arena.alloc({targets.numel()});
  LossValue out;
  const float scale = normalizer > 0 ? float(1.0 / normalizer) : 0.0f;
  out.sum = ops::cross_entropy(logits, arena.to_device(targets), logits, losses, scale, &out.count,
                               smoothing);
  return out;
}

ThorLoss thor_loss(Arena& arena, const Tensor& z1, const Tensor& z2, const Tensor& targets,
                   double alpha, double normalizer, float smoothing) {
  Tensor dz1 = arena.alloc(z1.shape), dz2 = arena.alloc(z2.shape);
  Tensor rows = arena.alloc({targets.numel()});
  ThorLoss out;
  // The consistency gradients first: the cross-entropy below overwrites the logits.
  out.cr_sum = ops::symmetric_kl(z1, z2, arena.to_device(targets), dz1, dz2, rows,
                                 float(alpha / normalizer));
  const LossValue a = lm_loss(arena, z1, targets, normalizer, smoothing);
  const LossValue b = lm_loss(arena, z2, targets, normalizer, smoothing);
  ops::add(z1, dz1, z1);
  ops::add(z2, dz2, z2);
  out.ce_sum = a.sum + b.sum;
  out.count = a.count;
  return out;
}

}  // namespace mt
