// Validation loss of a model on fixed windows of a split.
#pragma once
#include "io/tokens.hpp"
#include "model/gpt.hpp"
#include "model/loss.hpp"

namespace mt {

// Mean token loss over max_batches batches of evenly spaced, non-overlapping windows
// (max_batches = 0: every window of the split). Uses the arena and resets it.
LossValue evaluate(const Gpt& model, Arena& arena, const Batches& batches, int64_t batch_size,
                   int64_t max_batches);

}  // namespace mt
