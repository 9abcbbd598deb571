// Results file implementation.
#include "io/results.hpp"

#include <filesystem>

#include "io/h5.hpp"

namespace mt {

std::string code_version() {
  return MOETRAIN_VERSION;
}

ResultsFile::ResultsFile(std::string path, const std::string& config_ini, const std::string& world)
    : path_(std::move(path)) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  h5::File f(path_, h5::File::Create);
  h5::set_attr(f, "/", "format", std::string("moetrain-results"));
  h5::set_attr(f, "/", "config", config_ini);
  h5::set_attr(f, "/", "world", world);
  h5::set_attr(f, "/", "code_version", code_version());
}

void ResultsFile::record(const std::string& series, double value) {
  pending_[series].push_back(value);
}

void ResultsFile::record_row(const std::string& series, const std::vector<double>& values) {
  auto& [width, rows] = pending_rows_[series];
  width = int64_t(values.size());
  rows.insert(rows.end(), values.begin(), values.end());
}

void ResultsFile::flush() {
  h5::File f(path_, h5::File::ReadWrite);
  for (auto& [name, values] : pending_) {
    h5::append(f, name, values);
    values.clear();
  }
  for (auto& [name, rows] : pending_rows_) {
    h5::append_rows(f, name, rows.second, rows.first);
    rows.second.clear();
  }
  f.flush();
}

}  // namespace mt
