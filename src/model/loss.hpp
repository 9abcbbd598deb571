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
// gradient of the mean loss scaled by weight.
LossValue lm_loss(Arena& arena, const Tensor& logits, const Tensor& targets, float weight = 1.0f);

}  // namespace mt
