// The Scheduler decides each step's StepPlan: learning rate, logging, evaluation, last step.
// Ranks act only on the plan (DESIGN.md: one StepPlan per step from rank 0).
#pragma once
#include <cstdint>

#include "io/config.hpp"

namespace mt {

// Plain data, so that rank 0 can broadcast it as bytes.
struct StepPlan {
  int64_t step = 0;  // 0-based
  double lr = 0;
  uint8_t log = 0, eval = 0, last = 0;
};

class Scheduler {
 public:
  explicit Scheduler(const Config& c) : cfg_(c) {}
  StepPlan plan(int64_t step) const;

 private:
  const Config& cfg_;
};

}  // namespace mt
