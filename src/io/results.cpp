// Results file implementation.
#include "io/results.hpp"

#include <algorithm>
#include <filesystem>

#include "io/h5.hpp"

namespace mt {

std::string code_version() {
  return MOETRAIN_VERSION;
}

namespace {
// Rows of a group's "step" series with step < s.
int64_t rows_before(const h5::File& f, const std::string& step_series, int64_t s) {
  if (!f.exists(step_series)) return 0;
  const Shape shape = h5::shape_of(f, step_series);
  std::vector<float> steps(shape.numel());
  h5::read(f, step_series, steps.data(), shape);
  return std::count_if(steps.begin(), steps.end(), [&](float v) { return v < float(s); });
}
}  // namespace

ResultsFile::ResultsFile(std::string path, const std::string& config_ini, const std::string& world,
                         int64_t resume_step)
    : path_(std::move(path)) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  if (resume_step > 0 && std::filesystem::exists(path_)) {
    h5::File f(path_, h5::File::ReadWrite);
    const int64_t per_step = rows_before(f, "/train/step", resume_step);
    for (const std::string& name : h5::datasets(f)) {
      const std::string group = name.substr(0, name.rfind('/'));
      const bool own_steps = f.exists(group + "/step");
      h5::truncate_rows(f, name,
                        own_steps ? rows_before(f, group + "/step", resume_step) : per_step);
    }
    h5::set_attr(f, "/", "world", world);
    return;
  }
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
