// Learning-rate schedules.
#include "optim/schedule.hpp"

#include <algorithm>
#include <cmath>

#include "tensor/error.hpp"

namespace mt {

double learning_rate(const ScheduleConfig& s, int64_t step) {
  if (step < s.warmup) return s.lr * double(step + 1) / double(s.warmup);
  if (s.kind == "constant") return s.lr;
  if (s.kind == "inv_sqrt")
    return s.lr * std::sqrt(double(std::max<int64_t>(s.warmup, 1)) / (step + 1));
  if (s.kind == "cosine") {
    const double span = std::max<int64_t>(s.total - s.warmup, 1);
    const double progress = std::min(1.0, double(step - s.warmup) / span);
    return s.min_lr + 0.5 * (s.lr - s.min_lr) * (1.0 + std::cos(M_PI * progress));
  }
  fail("unknown learning-rate schedule '{}' (cosine, inv_sqrt, constant)", s.kind);
}

}  // namespace mt
