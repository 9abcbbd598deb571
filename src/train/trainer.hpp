// The training loop: data, model, optimizer and scheduler for one run on every rank of the
// runtime; rank 0 decides each step's plan, prints progress and writes results and checkpoints.
#pragma once
#include <cstdint>
#include <string>

#include "io/config.hpp"

namespace mt {

struct Runtime;

struct TrainResult {
  int64_t steps = 0;
  int64_t parameters = 0;  // of the whole model (all experts)
  double first_loss = 0, final_loss = 0;
  double valid_loss = 0, valid_ppl = 0, unigram_ppl = 0;
  double tokens_per_s = 0;
  size_t arena_allocations_after_first_step = 0;  // system allocations in steps 2..N
  size_t arena_peak_bytes = 0;  // the most activation memory one micro-batch (or evaluation) used
};

// Trains as configured on every rank of rt: from scratch, or from the checkpoint file `resume`,
// continuing its curves. quiet: no progress lines.
TrainResult train(const Config& cfg, Runtime& rt, bool quiet = false,
                  const std::string& resume = "");

}  // namespace mt
