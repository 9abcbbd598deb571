// Results file implementation.
#include "io/results.hpp"

#include <algorithm>
#include <filesystem>

#include "tensor/error.hpp"

namespace mt {

std::string code_version() {
  return MOETRAIN_VERSION;
}

namespace {
// Rows of a group's "step" series with step < s.
int64_t rows_before(const h5::File& f, const std::string& step_series, int64_t s) {
  if (!f.exists(step_series)) return 0;
  const std::vector<double> steps = h5::read_f64(f, step_series);
  return std::count_if(steps.begin(), steps.end(), [&](double v) { return v < double(s); });
}

// The rows of each series in the old file `path` recorded for steps < s: series of a group with
// its own "step" series (/valid, /phase) follow it, the others /train/step.
std::map<std::string, std::vector<double>> rows_before_step(const std::string& path,
                                                            const std::vector<Series>& series,
                                                            int64_t s) {
  std::map<std::string, std::vector<double>> kept;
  const h5::File f(path, h5::File::Read);
  const int64_t per_step = rows_before(f, "/train/step", s);
  for (const Series& x : series) {
    if (!f.exists(x.name)) continue;
    const std::string group = x.name.substr(0, x.name.rfind('/'));
    const int64_t rows = f.exists(group + "/step") ? rows_before(f, group + "/step", s) : per_step;
    std::vector<double> v = h5::read_f64(f, x.name);
    v.resize(std::min<size_t>(v.size(), size_t(rows * std::max<int64_t>(x.width, 1))));
    kept[x.name] = std::move(v);
  }
  return kept;
}
}  // namespace

ResultsFile::ResultsFile(std::string path, const std::string& config_ini,
                         const std::map<std::string, std::string>& attrs,
                         const std::vector<Series>& series, int64_t resume_step)
    : path_(std::move(path)) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  std::map<std::string, std::vector<double>> kept;
  if (resume_step > 0 && std::filesystem::exists(path_))
    kept = rows_before_step(path_, series, resume_step);
  const std::string tmp = path_ + ".tmp";
  file_ = std::make_unique<h5::File>(tmp, h5::File::Create);
  h5::set_attr(*file_, "/", "format", std::string("moetrain-results"));
  h5::set_attr(*file_, "/", "config", config_ini);
  for (const auto& [key, value] : attrs) h5::set_attr(*file_, "/", key, value);
  h5::set_attr(*file_, "/", "code_version", code_version());
  for (const Series& x : series) h5::create_series(*file_, x.name, x.width, kept[x.name]);
  file_->start_swmr();
  file_->rename_to(path_);
}

void ResultsFile::record(const std::string& series, double value) {
  pending_[series].push_back(value);
}

void ResultsFile::record_row(const std::string& series, const std::vector<double>& values) {
  std::vector<double>& rows = pending_[series];
  rows.insert(rows.end(), values.begin(), values.end());
}

void ResultsFile::flush() {
  // All of a flush's rows or none: when one series cannot take its rows (a full disk), those
  // before it give theirs back, so that every series keeps the same steps.
  std::vector<std::pair<std::string, int64_t>> grown;  // series appended to, their rows before
  try {
    for (auto& [name, values] : pending_) {
      if (values.empty()) continue;
      grown.emplace_back(name, h5::append(*file_, name, values));
    }
    file_->flush();
  } catch (const Error&) {
    for (const auto& [name, rows] : grown) h5::truncate(*file_, name, rows);
    throw;
  }
  for (auto& [name, values] : pending_) values.clear();
}

}  // namespace mt
