// The training loop: data, model, optimizer and scheduler for one run, curves to results.h5,
// progress lines on stdout, a checkpoint at the end.
#pragma once
#include <cstdint>

#include "io/config.hpp"

namespace mt {

struct TrainResult {
  int64_t steps = 0;
  int64_t parameters = 0;
  double first_loss = 0, final_loss = 0;
  double valid_loss = 0, valid_ppl = 0, unigram_ppl = 0;
  double tokens_per_s = 0;
  size_t arena_allocations_after_first_step = 0;  // system allocations in steps 2..N
};

// Trains from scratch as configured. quiet: no progress lines (tests).
TrainResult train(const Config& cfg, bool quiet = false);

}  // namespace mt
