// Language-model loss: mean token cross-entropy over counted targets (target < 0 is padding).
#pragma once
#include "tensor/arena.hpp"

namespace mt {

struct LossValue {
  double sum = 0;     // summed over counted tokens
  int64_t count = 0;  // counted tokens
  double mean() const { return count ? sum / count : 0.0; }
};

// Computes the loss of logits [N, V] against targets [N] and turns logits, in place, into the
// gradient of (summed loss / normalizer). normalizer 0: this call's counted tokens (its mean);
// across ranks: the global batch's token count, so that summed gradients are the global mean's.
LossValue lm_loss(Arena& arena, const Tensor& logits, const Tensor& targets, double normalizer = 0);

}  // namespace mt
