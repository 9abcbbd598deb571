// results/<run>/metrics.jsonl: the run's logged steps and evaluations as JSON lines, one object
// per line, for tools that read those rather than HDF5:
//   {"kind": "train", "step": 20, "time": 1764650000.123, "loss": 5.43, "ce": 5.41, ...}
//   {"kind": "valid", "step": 200, "time": ..., "loss": 4.93, "ppl": 138.7}
// step is 1-based (the step a progress line shows), time Unix seconds; a value that is not
// finite is written as null. Each line is written whole or not at all (a failed write, such as a
// full disk, is cut back off and stops the run with the file's name). A resumed run keeps the
// lines of the steps up to its checkpoint and appends after them, as results.h5 does.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mt {

class MetricsLog {
 public:
  // Writes PATH.tmp holding the lines of PATH (when there is one) with step <= resume_step,
  // renames it to PATH and keeps it open for appending; on a failure PATH.tmp is removed and
  // PATH is left as it was.
  MetricsLog(std::string path, int64_t resume_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void write(const std::string& kind, int64_t step,
             const std::vector<std::pair<std::string, double>>& values);

 private:
  void append(const std::string& text, const std::string& path);
  std::string path_;
  int fd_ = -1;
  int64_t size_ = 0;  // bytes of whole lines
};

}  // namespace mt
