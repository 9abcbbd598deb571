// The Scheduler decides each step's StepPlan: learning rate, logging, evaluation, last step, the
// Gating Dropout coin and the routing key. Ranks act only on the plan (docs/design.md: one StepPlan
// per step from rank 0, broadcast).
#pragma once
#include <cstdint>

#include "io/config.hpp"

namespace mt {

// Plain data, so that rank 0 can broadcast it as bytes.
struct StepPlan {
  int64_t step = 0;  // 0-based
  double lr = 0;
  uint64_t key = 0;  // keys this step's routing draws (THOR experts, GShard second choices)
  uint8_t log = 0, eval = 0, last = 0;
  uint8_t checkpoint = 0;  // write a checkpoint after this step
  uint8_t stop = 0;        // end this invocation after this step (train.run_steps, preemption)
  uint64_t gate_drop = 0;  // Gating Dropout: bit i set when block i routes every token locally
  uint8_t phase = 0;       // EvoMoE: 0 expert-diversify, 1 gate-sparsify, 2 top-1 (others: 0)
  uint8_t diversify = 0;   // EvoMoE: spawn the experts before this step
  int64_t phase_step = 0;  // steps since the phase began
  float tau = 1.0f;        // EvoMoE dense-to-sparse temperature
};

// Names of the phases, as written to results.h5 /phase.
const char* phase_name(int phase);

class Scheduler {
 public:
  // first_step: where this invocation starts (0, or a resumed checkpoint's step).
  explicit Scheduler(const Config& c, int64_t first_step = 0) : cfg_(c), first_(first_step) {}
  // preempt: a stop was requested (SIGUSR1/SIGTERM): checkpoint after this step and stop.
  StepPlan plan(int64_t step, bool preempt = false) const;
  // EvoMoE's step of the spawn and length of the annealing (defaults resolved).
  int64_t diversify_step() const;
  int64_t anneal_steps() const;

 private:
  const Config& cfg_;
  int64_t first_;
};

}  // namespace mt
