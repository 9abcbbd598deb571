// The progress line rank 0 prints at each logged step, and what it reads from the system: the
// resident memory and the wall clock.
#pragma once
#include <cstdint>
#include <string>

namespace mt {

struct StepStats {
  int64_t step = 0, total = 0;  // 1-based, as every line a user reads
  // The cross-entropy (the validation loss's quantity); the gate losses and THOR's consistency
  // term beside it, shown where the model has MoE blocks / is THOR.
  double ce = 0, aux = 0, consistency = 0;
  bool moe = false, thor = false;
  double lr = 0, grad_norm = 0;
  double step_ms = 0, tokens_per_s = 0, mfu = 0;  // the steps since the previous line
  double dropped = 0;     // MoE: the share of the step's (token, choice) pairs capacity dropped
  double load_ratio = 0;  // MoE: max / mean tokens per expert, the most unequal block's
  double resident_mb = 0, eta_s = 0;
  std::string clock;  // the wall clock, "2026-12-03 14:55:01"
};

std::string progress_line(const StepStats& s);
std::string format_duration(double seconds);  // "1h02m", "3m05s", "12.3s"
double resident_mb();                         // this process's resident memory now
std::string wall_clock();                     // local time, "2026-12-03 14:55:01"

}  // namespace mt
