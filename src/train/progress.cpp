// Progress line formatting, and the resident memory and wall clock it shows.
#include "train/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <ctime>
#include <fstream>

namespace mt {

std::string format_duration(double s) {
  if (s < 60) return fmt::format("{:.1f}s", s);
  const int64_t t = int64_t(std::llround(s));
  if (t < 3600) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
}

std::string progress_line(const StepStats& s) {
  const int width = int(std::to_string(s.total).size());
  std::string line = fmt::format("step {:>{}}/{} | loss {:.4f}", s.step, width, s.total, s.ce);
  if (s.moe) line += fmt::format(" | aux {:.4f}", s.aux);
  if (s.thor) line += fmt::format(" | cons {:.4f}", s.consistency);
  line += fmt::format(" | lr {:.2e} | norm {:.3f} | {:.0f} ms | {:>6.0f} tok/s | MFU {:.1f}%", s.lr,
                      s.grad_norm, s.step_ms, s.tokens_per_s, 100 * s.mfu);
  if (s.moe) line += fmt::format(" | drop {:.1f}% | load {:.2f}", 100 * s.dropped, s.load_ratio);
  return line + fmt::format(" | {:.0f} MB | ETA {} | {}", s.resident_mb, format_duration(s.eta_s),
                            s.clock);
}

double resident_mb() {
  std::ifstream statm("/proc/self/statm");
  double pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * double(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

std::string wall_clock() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
  return text;
}

}  // namespace mt
