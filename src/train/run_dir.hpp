// One owner per run folder. `train` claims <results_dir>/<name> for the whole run: rank 0 holds
// an exclusive flock(2) on <run>/.lock (released when the process ends, however it ends; the
// file names the holder), and a fresh run (no --resume) refuses a folder that holds an earlier
// run's results or checkpoints unless run.overwrite is true.
#pragma once
#include <string>

#include "comm/process_group.hpp"
#include "io/config.hpp"

namespace mt {

class RunDirLock {
 public:
  RunDirLock() = default;
  explicit RunDirLock(const std::string& run_dir);  // throws "in use by pid P on host H"
  RunDirLock(RunDirLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RunDirLock& operator=(RunDirLock&& o) noexcept;
  ~RunDirLock();

 private:
  int fd_ = -1;
};

// Collective over `world`: rank 0 takes the lock and checks the folder; on a problem every rank
// stops with rank 0's message. The returned lock is held (on rank 0) until it is destroyed.
RunDirLock claim_run_dir(const Config& cfg, bool resuming, ProcessGroup& world);

// Removes an earlier run's checkpoints (checkpoint.h5, checkpoints/) from the folder: what a fresh
// run with run.overwrite does once it is set up (the results file it then writes replaces the
// old one).
void remove_earlier_checkpoints(const std::string& run_dir);

}  // namespace mt
