// Checkpoint save (temporary name, fsync, rename) and model load with format and shape checks.
#include "io/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <vector>

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

// NaN or Inf in a stored tensor: a checkpoint to report, not to train from.
void check_finite(const h5::File& f, const std::string& name, const float* data, int64_t n) {
  MT_CHECK(std::all_of(data, data + n, [](float x) { return std::isfinite(x); }),
           "{}: {} holds NaN or Inf", f.path(), name);
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

void save_checkpoint(const std::string& path, const std::vector<CheckpointPart>& parts,
                     int64_t step, const std::string& config_ini, const Groups& groups,
                     const std::map<std::string, double>& scheduler, const std::string& tokenizer) {
  const bool root = groups.topo.world_rank == 0, gathers = groups.ep_index() == 0;
  // Whole tensors: expert shards gathered over the first EP group, which holds every expert.
  std::vector<float> whole;
  auto assemble = [&](const ParamInfo& p, const float* local) -> const float* {
    if (p.kind == ParamKind::Replicated) return local;
    whole.resize(root ? size_t(p.global_rows * p.row_elements()) : 0);
    groups.ep->gather(local, p.shape.numel(), whole.data(), 0);
    return whole.data();
  };
  // Rank 0's first failure (a directory, a write, the rename); the gathers go on after it, so that
  // no rank is left waiting in one, and every rank then stops with a message.
  std::string error;
  auto on_root = [&](auto&& io) {
    if (!root || !error.empty()) return;
    try {
      io();
    } catch (const std::exception& e) {
      error = e.what();
    }
  };
  const std::string tmp = path + ".tmp";
  std::unique_ptr<h5::File> f;
  on_root([&] {
    const std::filesystem::path final_path(path);
    if (final_path.has_parent_path()) std::filesystem::create_directories(final_path.parent_path());
    f = std::make_unique<h5::File>(tmp, h5::File::Create);
    h5::set_attr(*f, "/", "format", std::string("moetrain-checkpoint"));
    h5::set_attr(*f, "/", "version", kCheckpointVersion);
    h5::set_attr(*f, "/", "step", step);
    h5::set_attr(*f, "/", "config", config_ini);
    h5::set_attr(*f, "/", "world_size", int64_t(groups.topo.world_size));
    h5::set_attr(*f, "/", "ep_size", int64_t(groups.ep_size()));
    h5::set_attr(*f, "/", "code_version", code_version());
    h5::make_group(*f, "/scheduler");
    for (const auto& [key, value] : scheduler) h5::set_attr(*f, "/scheduler", key, value);
    if (!tokenizer.empty())
      h5::write(*f, "/tokenizer", reinterpret_cast<const uint8_t*>(tokenizer.data()),
                Shape{int64_t(tokenizer.size())});
  });
  for (const CheckpointPart& part : parts) {
    if (!gathers) break;
    const ParamRegistry& reg = part.reg;
    std::vector<float> staged[3];  // GPU runs: the flat arrays copied to the host
    const float* values = host_floats(reg.value_buffer(), staged[0]);
    const float* m = host_floats(part.opt.m(), staged[1]);
    const float* v = host_floats(part.opt.v(), staged[2]);
    for (size_t i = 0; i < reg.size(); ++i) {
      const ParamInfo& p = reg.info(int(i));
      const std::pair<std::string, const float*> tensors[] = {
          {"/model/" + p.name, values + p.offset},
          {"/optim/" + p.name + "/m", m + p.offset},
          {"/optim/" + p.name + "/v", v + p.offset}};
      for (const auto& tensor : tensors) {
        const float* data = assemble(p, tensor.second);
        on_root([&] { h5::write(*f, tensor.first, data, p.shape.with_first(p.global_rows)); });
      }
    }
  }
  on_root([&] {
    for (const CheckpointPart& part : parts)
      h5::set_attr(*f, "/optim", part.step_key, part.opt.steps());
    f->flush();
    f.reset();
    fsync_path(tmp);
    std::filesystem::rename(tmp, path);
  });
  if (root && !error.empty()) {  // no half-written file stays behind
    f.reset();
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
  }
  int failed = root && !error.empty();
  groups.world->broadcast(&failed, sizeof failed, 0);
  if (root && !error.empty()) fail("checkpoint {}: {}", path, error);
  MT_CHECK(!failed, "checkpoint {}: writing failed on rank 0", path);
}

void load_model(const std::string& path, ParamRegistry& reg) {
  h5::File f(path, h5::File::Read);
  check_format(f);
  std::vector<float> staging;
  float* values = host_floats(reg.value_buffer(), staging);
  for (size_t i = 0; i < reg.size(); ++i) {
    const ParamInfo& p = reg.info(int(i));
    h5::read_rows(f, "/model/" + p.name, values + p.offset, p.shape, p.global_rows, p.row_offset);
    check_finite(f, "/model/" + p.name, values + p.offset, p.shape.numel());
  }
  store_host_floats(reg.value_buffer(), staging);
}

std::string checkpoint_config(const std::string& path) {
  h5::File f(path, h5::File::Read);
  check_format(f);
  return h5::attr_string(f, "/", "config");
}

std::string checkpoint_tokenizer(const std::string& path) {
  h5::File f(path, h5::File::Read);
  check_format(f);
  if (!f.exists("/tokenizer")) return "";
  const std::vector<uint8_t> bytes = h5::read_u8(f, "/tokenizer");
  return std::string(bytes.begin(), bytes.end());
}

int64_t checkpoint_step(const std::string& path) {
  h5::File f(path, h5::File::Read);
  check_format(f);
  return h5::attr_int(f, "/", "step");
}

double checkpoint_value(const std::string& path, const std::string& key) {
  h5::File f(path, h5::File::Read);
  check_format(f);
  MT_CHECK(h5::has_attr(f, "/scheduler", key), "{}: no attribute {} in /scheduler", path, key);
  return h5::attr_double(f, "/scheduler", key);
}

int64_t load_optimizer(const std::string& path, const ParamRegistry& reg, AdamW& opt,
                       const std::string& step_key) {
  h5::File f(path, h5::File::Read);
  check_format(f);
  std::vector<float> staged_m, staged_v;
  float* m = host_floats(opt.m(), staged_m);
  float* v = host_floats(opt.v(), staged_v);
  for (size_t i = 0; i < reg.size(); ++i) {
    const ParamInfo& p = reg.info(int(i));
    for (auto [moment, data] : {std::pair{"m", m}, std::pair{"v", v}}) {
      const std::string name = "/optim/" + p.name + "/" + moment;
      h5::read_rows(f, name, data + p.offset, p.shape, p.global_rows, p.row_offset);
      check_finite(f, name, data + p.offset, p.shape.numel());
    }
  }
  store_host_floats(opt.m(), staged_m);
  store_host_floats(opt.v(), staged_v);
  return h5::attr_int(f, "/optim", step_key);
}

std::string checkpoint_problem(const std::string& path) {
  try {
    const h5::File f(path, h5::File::Read);
    check_format(f);
    h5::attr_int(f, "/", "step");
    for (const std::string& name : h5::datasets(f)) {
      const Shape shape = h5::shape_of(f, name);
      std::vector<float> data(shape.numel());
      h5::read(f, name, data.data(), shape);  // verifies the checksums
      check_finite(f, name, data.data(), int64_t(data.size()));
    }
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string latest_checkpoint(const std::string& run_dir, std::vector<std::string>& skipped) {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates = {fs::path(run_dir) / "checkpoint.h5"};
  if (fs::is_directory(fs::path(run_dir) / "checkpoints"))
    for (const auto& e : fs::directory_iterator(fs::path(run_dir) / "checkpoints"))
      if (e.path().extension() == ".h5") candidates.push_back(e.path());
  std::vector<std::pair<int64_t, std::string>> by_step;  // unreadable steps sort first: -1
  for (const auto& c : candidates) {
    if (!fs::exists(c)) continue;
    int64_t step = -1;
    try {
      step = checkpoint_step(c.string());
    } catch (const Error&) {
    }
    by_step.emplace_back(step, c.string());
  }
  std::sort(by_step.rbegin(), by_step.rend());  // newest first
  for (const auto& [step, path] : by_step) {
    const std::string problem = checkpoint_problem(path);
    if (problem.empty()) return path;
    skipped.push_back(problem);
  }
  MT_CHECK(by_step.empty(), "--resume latest: no intact checkpoint in {} (of {}: {})", run_dir,
           by_step.size(), fmt::join(skipped, "; "));
  fail("--resume latest: no checkpoint in {}", run_dir);
}

void prune_checkpoints(const std::string& run_dir, int64_t keep) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(dir)) return;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".h5")
      files.push_back(e.path());
    else if (e.path().extension() == ".tmp")
      fs::remove(e.path());
  std::sort(files.begin(), files.end());  // step_%08d.h5: names sort by step
  for (size_t i = 0; i + size_t(keep) < files.size(); ++i) fs::remove(files[i]);
}

}  // namespace mt
