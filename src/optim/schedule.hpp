// Learning-rate schedules: linear warmup, then cosine decay to min_lr, inverse square root, or
// constant.
#pragma once
#include <cstdint>
#include <string>

namespace mt {

struct ScheduleConfig {
  std::string kind = "cosine";  // cosine | inv_sqrt | constant
  double lr = 1e-3, min_lr = 1e-4;
  int64_t warmup = 100, total = 1000;
};

// Learning rate at 0-based step.
double learning_rate(const ScheduleConfig& s, int64_t step);

}  // namespace mt
