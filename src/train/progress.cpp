// Progress line formatting.
#include "train/progress.hpp"

#include <fmt/format.h>

#include <cmath>

namespace mt {

std::string format_duration(double s) {
  if (s < 60) return fmt::format("{:.1f}s", s);
  const int64_t t = int64_t(std::llround(s));
  if (t < 3600) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
}

std::string progress_line(const StepStats& s) {
  const int width = int(std::to_string(s.total).size());
  return fmt::format(
      "step {:>{}}/{} | loss {:.4f} | lr {:.2e} | norm {:.3f} | {:>7.0f} tok/s | ETA {}", s.step,
      width, s.total, s.loss, s.lr, s.grad_norm, s.tokens_per_s, format_duration(s.eta_s));
}

}  // namespace mt
