// Validation loss of a model on fixed windows of a split, over all ranks.
#pragma once
#include <functional>

#include "io/tokens.hpp"
#include "model/gpt.hpp"
#include "model/loss.hpp"
#include "train/runtime.hpp"
#include "train/scheduler.hpp"

namespace mt {

// The pass settings evaluation takes from the run: the seed and, for EvoMoE, the phase and
// temperature of the last plan.
PassContext eval_context(uint64_t seed, const StepPlan& plan);
// Those of the step the checkpoint `path` (of the run `cfg`) was written after.
PassContext checkpoint_eval_context(const Config& cfg, const std::string& path);

// The evaluation batches of `evaluate` (below): each forward's tokens and targets [local, T]
// (host) and its pass context, handed to `use`. Uses the arena and resets it before each.
void for_each_eval_batch(
    Arena& arena, const Batches& batches, int64_t batch_size, int64_t max_batches,
    const Runtime& rt, const PassContext& base, int64_t micro,
    const std::function<void(const Tensor&, const Tensor&, const PassContext&)>& use);
// Runs the evaluation forwards of `evaluate` (below) and hands each one's activations, logits
// [local * T, V] and targets [local, T] (host) to `use`. Uses the arena and resets it.
void for_each_eval_pass(
    const Gpt& model, Arena& arena, const Batches& batches, int64_t batch_size, int64_t max_batches,
    const Runtime& rt, const PassContext& base, int64_t micro,
    const std::function<void(const Gpt::Activations&, const Tensor&, const Tensor&)>& use);

// Mean token loss over max_batches batches of batch_size evenly spaced, non-overlapping windows
// (max_batches = 0: every window of the split). Each forward takes `micro` windows per rank (as
// training's micro-batches; 0: batch_size / ranks); the result is summed over the ranks. Uses the
// arena and resets it.
LossValue evaluate(const Gpt& model, Arena& arena, const Batches& batches, int64_t batch_size,
                   int64_t max_batches, const Runtime& rt, const PassContext& base,
                   int64_t micro = 0);

}  // namespace mt
