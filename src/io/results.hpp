// results/<run>/results.h5 (DESIGN.md): growing 1-D series such as /train/loss and /valid/ppl,
// root attributes config, world and code_version. Values are buffered and appended by flush(),
// which opens, writes and closes the file, so a crashed run keeps everything flushed before.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace mt {

class ResultsFile {
 public:
  // Creates the file (replacing an old one) with its root attributes. resume_step > 0: opens the
  // existing file instead and drops every row recorded for a step >= resume_step, so that the
  // resumed run appends to a curve that ends where its checkpoint was written.
  ResultsFile(std::string path, const std::string& config_ini, const std::string& world,
              int64_t resume_step = 0);
  void record(const std::string& series, double value);  // e.g. "/train/loss"
  // One row of a growing 2-D dataset [rows, values.size()], e.g. "/routing/block1/load".
  void record_row(const std::string& series, const std::vector<double>& values);
  void flush();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::map<std::string, std::vector<double>> pending_;
  std::map<std::string, std::pair<int64_t, std::vector<double>>> pending_rows_;  // width, values
};

std::string code_version();

}  // namespace mt
