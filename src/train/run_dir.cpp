// Run folder claim: the lock file and the check for an earlier run.
#include "train/run_dir.hpp"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "tensor/error.hpp"

namespace mt {

namespace fs = std::filesystem;

RunDirLock::RunDirLock(const std::string& run_dir) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  MT_CHECK(!ec, "{}: cannot create the run folder: {}", run_dir, ec.message());
  const std::string path = run_dir + "/.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  MT_CHECK(fd_ >= 0, "{}: cannot open: {}", path, std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    std::ifstream in(path);
    std::string holder;
    std::getline(in, holder);
    MT_CHECK(err != EWOULDBLOCK, "{}: in use by {} (another moetrain train holds {})", run_dir,
             holder.empty() ? "another process" : holder, path);
    fail("{}: cannot lock: {}", path, std::strerror(err));
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string holder = fmt::format("pid {} on host {}\n", ::getpid(), host);
  const bool written = ::ftruncate(fd_, 0) == 0 &&
                       ::pwrite(fd_, holder.data(), holder.size(), 0) == ssize_t(holder.size());
  MT_CHECK(written, "{}: cannot write: {}", path, std::strerror(errno));
}

RunDirLock& RunDirLock::operator=(RunDirLock&& o) noexcept {
  std::swap(fd_, o.fd_);
  return *this;
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the lock
}

namespace {
// What an earlier run left in the folder.
std::vector<std::string> earlier_outputs(const std::string& run_dir) {
  std::vector<std::string> found;
  for (const char* name : {"results.h5", "checkpoint.h5"})
    if (fs::is_regular_file(run_dir + "/" + name)) found.push_back(name);
  std::error_code ec;
  if (fs::is_directory(run_dir + "/checkpoints") && !fs::is_empty(run_dir + "/checkpoints", ec))
    found.push_back("checkpoints/");
  return found;
}

}  // namespace

RunDirLock claim_run_dir(const Config& cfg, bool resuming, ProcessGroup& world) {
  RunDirLock lock;
  world.on_root([&] {
    lock = RunDirLock(cfg.run_dir());
    const std::vector<std::string> found = earlier_outputs(cfg.run_dir());
    MT_CHECK(resuming || cfg.overwrite || found.empty(),
             "{} holds an earlier run ({}): continue it with --resume latest, or replace it with "
             "--run.overwrite true",
             cfg.run_dir(), fmt::join(found, ", "));
  });
  return lock;
}

void remove_earlier_checkpoints(const std::string& run_dir) {
  std::error_code ec;
  fs::remove(run_dir + "/checkpoint.h5", ec);
  MT_CHECK(!ec, "{}/checkpoint.h5: cannot remove: {}", run_dir, ec.message());
  fs::remove_all(run_dir + "/checkpoints", ec);
  MT_CHECK(!ec, "{}/checkpoints: cannot remove: {}", run_dir, ec.message());
}

}  // namespace mt
