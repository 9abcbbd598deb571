// Checkpoint save (temporary name, fsync, rename) and model load with format and shape checks.
#include "io/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "io/h5.hpp"
#include "io/results.hpp"
#include "tensor/error.hpp"

namespace mt {

namespace {
void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  MT_CHECK(fd >= 0 && ::fsync(fd) == 0, "{}: fsync failed", path);
  ::close(fd);
}

void check_format(const h5::File& f) {
  MT_CHECK(f.exists("/model"), "{}: not a moetrain checkpoint (no /model group)", f.path());
  const std::string format = h5::attr_string(f, "/", "format");
  MT_CHECK(format == "moetrain-checkpoint", "{}: format '{}' is not moetrain-checkpoint", f.path(),
           format);
  const int64_t version = h5::attr_int(f, "/", "version");
  MT_CHECK(version == kCheckpointVersion, "{}: checkpoint format version {} (this build reads {})",
           f.path(), version, kCheckpointVersion);
}
}  // namespace

void save_checkpoint(const std::string& path, const ParamRegistry& reg, AdamW& opt, int64_t step,
                     const std::string& config_ini) {
  const std::filesystem::path final_path(path);
  if (final_path.has_parent_path()) std::filesystem::create_directories(final_path.parent_path());
  const std::string tmp = path + ".tmp";
  {
    h5::File f(tmp, h5::File::Create);
    h5::set_attr(f, "/", "format", std::string("moetrain-checkpoint"));
    h5::set_attr(f, "/", "version", kCheckpointVersion);
    h5::set_attr(f, "/", "step", step);
    h5::set_attr(f, "/", "config", config_ini);
    h5::set_attr(f, "/", "code_version", code_version());
    for (size_t i = 0; i < reg.size(); ++i) {
      const ParamInfo& p = reg.info(int(i));
      h5::write(f, "/model/" + p.name, reg.value(int(i)).f32(), p.shape);
      h5::write(f, "/optim/" + p.name + "/m", opt.m().data() + p.offset, p.shape);
      h5::write(f, "/optim/" + p.name + "/v", opt.v().data() + p.offset, p.shape);
    }
    h5::set_attr(f, "/optim", "step", opt.steps());
    f.flush();
  }
  fsync_path(tmp);
  std::filesystem::rename(tmp, final_path);
}

void load_model(const std::string& path, ParamRegistry& reg) {
  h5::File f(path, h5::File::Read);
  check_format(f);
  for (size_t i = 0; i < reg.size(); ++i) {
    const ParamInfo& p = reg.info(int(i));
    h5::read(f, "/model/" + p.name, reg.value(int(i)).f32(), p.shape);
  }
}

std::string checkpoint_config(const std::string& path) {
  h5::File f(path, h5::File::Read);
  check_format(f);
  return h5::attr_string(f, "/", "config");
}

}  // namespace mt
