// Language-model loss: mean token cross-entropy over counted targets (target < 0 is padding).
#pragma once
#include "tensor/arena.hpp"

namespace mt {

struct LossValue {
  double sum = 0;     // summed over counted tokens
  int64_t count = 0;  // counted tokens
  double mean() const { return count ? sum / count : 0.0; }
};

// Computes the loss of logits [N, V] (on the arena's device) against targets [N] (on the host)
// and turns logits, in place, into the gradient of (summed loss / normalizer). normalizer 0: this
// call's counted tokens (its mean); across ranks: the global batch's token count, so that summed
// gradients are the global mean's. smoothing: fairseq's label smoothing (train.label_smoothing).
LossValue lm_loss(Arena& arena, const Tensor& logits, const Tensor& targets, double normalizer = 0,
                  float smoothing = 0);

// THOR's objective in its reference-code form (docs/methods.md §1.3): CE(pass 1) + CE(pass 2)
// + alpha * CR, CR the symmetric KL of the two passes' output distributions summed over counted
// tokens; every sum divided by normalizer. Turns both logits, in place, into their gradients.
struct ThorLoss {
  double ce_sum = 0;  // both passes' cross-entropy, summed over tokens
  double cr_sum = 0;  // the consistency term, summed over tokens (unweighted)
  int64_t count = 0;  // counted tokens of one pass
};
ThorLoss thor_loss(Arena& arena, const Tensor& z1, const Tensor& z2, const Tensor& targets,
                   double alpha, double normalizer, float smoothing = 0);

}  // namespace mt
