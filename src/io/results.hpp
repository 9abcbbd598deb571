// results/<run>/results.h5: growing series such as /train/loss (one value per step) and
// /routing/block1/load (one row per step), root attributes format, config, code_version and the
// run's own (run_attributes: world, hosts, start_time, slurm_job_id). The file stays open for the
// whole run in HDF5's single-writer/multiple-reader mode: readers may open it while the run writes
// (h5py: `h5py.File(path, "r", swmr=True)`), and flush() makes the rows recorded so far visible to
// them, so a crashed run keeps everything flushed before. SWMR cannot add objects to an open file,
// so every series is declared up front.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/h5.hpp"

namespace mt {

struct Series {
  std::string name;   // e.g. "/train/loss"
  int64_t width = 0;  // values per row (0: a 1-D series)
};

class ResultsFile {
 public:
  // Writes PATH.tmp with the root attributes and every series, renames it to PATH and keeps it
  // open. resume_step > 0: each series starts with the rows the existing PATH holds for steps
  // < resume_step, so the resumed run appends to a curve that ends where its checkpoint was
  // written (the old file, also one a killed run left, is read, never written).
  ResultsFile(std::string path, const std::string& config_ini,
              const std::map<std::string, std::string>& attrs, const std::vector<Series>& series,
              int64_t resume_step = 0);
  void record(const std::string& series, double value);
  void record_row(const std::string& series, const std::vector<double>& values);
  void flush();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<h5::File> file_;
  std::map<std::string, std::vector<double>> pending_;  // rows of each series, flattened
};

std::string code_version();

}  // namespace mt
