// The JSON-lines metrics log (see metrics_log.hpp).
#include "io/metrics_log.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fcntl.h>
#include <unistd.h>

#include "tensor/error.hpp"

namespace mt {

namespace {
// The "step" of a line this log wrote; -1 when it has none (a line cut short by a crash).
int64_t step_of(const std::string& line) {
  const size_t at = line.find("\"step\": ");
  if (at == std::string::npos || line.empty() || line.back() != '}') return -1;
  return std::strtoll(line.c_str() + at + 8, nullptr, 10);
}

}  // namespace

void MetricsLog::append(const std::string& text, const std::string& path) {
  const ssize_t n = ::write(fd_, text.data(), text.size());
  if (n == ssize_t(text.size())) {
    size_ += n;
    return;
  }
  const int err = n < 0 ? errno : ENOSPC;
  (void)::ftruncate(fd_, size_);  // no half line
  fail("{}: {}", path, std::strerror(err));
}

MetricsLog::MetricsLog(std::string path, int64_t resume_step) : path_(std::move(path)) {
  const std::string tmp = path_ + ".tmp";
  fd_ = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  MT_CHECK(fd_ >= 0, "{}: {}", tmp, std::strerror(errno));
  try {
    if (resume_step > 0) {
      std::ifstream old(path_);
      for (std::string line; std::getline(old, line);) {
        const int64_t s = step_of(line);
        if (s >= 1 && s <= resume_step) append(line + "\n", tmp);
      }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path_, ec);
    MT_CHECK(!ec, "{}: cannot rename to {}: {}", tmp, path_, ec.message());
  } catch (...) {  // no destructor runs for a constructor that throws
    ::close(fd_);
    ::unlink(tmp.c_str());
    throw;
  }
}

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsLog::write(const std::string& kind, int64_t step,
                       const std::vector<std::pair<std::string, double>>& values) {
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string line =
      fmt::format("{{\"kind\": \"{}\", \"step\": {}, \"time\": {:.3f}", kind, step, now);
  for (const auto& [name, v] : values)
    line += std::isfinite(v) ? fmt::format(", \"{}\": {}", name, v)
                             : fmt::format(", \"{}\": null", name);
  append(line + "}\n", path_);
}

}  // namespace mt
