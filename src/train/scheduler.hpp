// The Scheduler decides each step's StepPlan: learning rate, logging, evaluation, last step, the
// Gating Dropout coin and the routing key. Ranks act only on the plan (DESIGN.md: one StepPlan per
// step from rank 0, broadcast).
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
  uint8_t gate_drop = 0;  // Gating Dropout: this step's MoE layers route every token locally
};

class Scheduler {
 public:
  explicit Scheduler(const Config& c) : cfg_(c) {}
  StepPlan plan(int64_t step) const;

 private:
  const Config& cfg_;
};

}  // namespace mt
