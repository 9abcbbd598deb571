// The progress line rank 0 prints: step, loss, learning rate, gradient norm, tokens/s, ETA.
#pragma once
#include <cstdint>
#include <string>

namespace mt {

struct StepStats {
  int64_t step = 0, total = 0;
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0, eta_s = 0;
};

std::string progress_line(const StepStats& s);
std::string format_duration(double seconds);  // "1h02m", "3m05s", "12.3s"

}  // namespace mt
