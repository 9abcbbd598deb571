// moetrain inspect FILE: a readable summary of a checkpoint (step, layout, scheduler state, every
// parameter with its whole shape and L2 norm) or a results file (every series, its length and
// last value).
#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "cli/commands.hpp"
#include "io/h5.hpp"
#include "tensor/error.hpp"

namespace mt::cli {

namespace {

std::vector<float> read_all(const h5::File& f, const std::string& name) {
  const Shape s = h5::shape_of(f, name);
  std::vector<float> v(s.numel());
  h5::read(f, name, v.data(), s);
  return v;
}

void inspect_checkpoint(const h5::File& f) {
  fmt::print("checkpoint {} (format version {})\n", f.path(), h5::attr_int(f, "/", "version"));
  fmt::print("  step {} | written on {} ranks, ep_size {} | code {}\n",
             h5::attr_int(f, "/", "step"), h5::attr_int(f, "/", "world_size"),
             h5::attr_int(f, "/", "ep_size"), h5::attr_string(f, "/", "code_version"));
  if (h5::has_attr(f, "/scheduler", "phase"))
    fmt::print("  scheduler: phase {} (step {} of it), lr {:.3e}, tau {:.3f}\n",
               h5::attr_double(f, "/scheduler", "phase"),
               h5::attr_double(f, "/scheduler", "phase_step"),
               h5::attr_double(f, "/scheduler", "lr"), h5::attr_double(f, "/scheduler", "tau"));
  fmt::print("  {:<40} {:>16} {:>12} {:>12}\n", "parameter", "shape", "norm", "adam |m|");
  int64_t total = 0;
  for (const std::string& name : h5::datasets(f)) {
    if (!name.starts_with("/model/")) continue;
    const std::string p = name.substr(7);
    const std::vector<float> v = read_all(f, name), m = read_all(f, "/optim/" + p + "/m");
    double nv = 0, nm = 0;
    for (float x : v) nv += double(x) * x;
    for (float x : m) nm += double(x) * x;
    total += int64_t(v.size());
    fmt::print("  {:<40} {:>16} {:>12.4f} {:>12.3e}\n", p, h5::shape_of(f, name).str(),
               std::sqrt(nv), std::sqrt(nm));
  }
  fmt::print("  {} parameters\n", total);
}

void inspect_results(const h5::File& f) {
  fmt::print("results {} | {} | code {}\n", f.path(), h5::attr_string(f, "/", "world"),
             h5::attr_string(f, "/", "code_version"));
  fmt::print("  {:<36} {:>12} {:>14}\n", "series", "shape", "last");
  for (const std::string& name : h5::datasets(f)) {
    const Shape s = h5::shape_of(f, name);
    const std::vector<float> v = read_all(f, name);
    std::string last = "-";
    if (!v.empty()) {
      const int64_t width = s.ndim() == 2 ? s[1] : 1;
      last = width == 1 ? fmt::format("{:.6g}", v.back()) : fmt::format("{} values", width);
    }
    fmt::print("  {:<36} {:>12} {:>14}\n", name, s.str(), last);
  }
}

}  // namespace

int inspect(const Args& args) {
  constexpr const char* kUsage = "usage: moetrain inspect FILE (a checkpoint or a results file)";
  if (args.size() == 1 && args[0] == "--help") {
    fmt::print("{}\n", kUsage);
    return 0;
  }
  MT_CHECK(args.size() == 1, "inspect: {}", kUsage);
  const h5::File f(args[0], h5::File::ReadLive);
  const std::string format =
      h5::has_attr(f, "/", "format") ? h5::attr_string(f, "/", "format") : "";
  if (format == "moetrain-checkpoint") {
    inspect_checkpoint(f);
  } else if (format == "moetrain-results") {
    inspect_results(f);
  } else {
    fail("{}: not a moetrain checkpoint or results file (format '{}')", args[0], format);
  }
  return 0;
}

}  // namespace mt::cli
