// moetrain train: parse the configuration and run the trainer.
#include <iostream>

#include "cli/commands.hpp"
#include "io/checkpoint.hpp"
#include "io/config.hpp"
#include "tensor/error.hpp"
#include "train/preemption.hpp"
#include "train/run_dir.hpp"
#include "train/runtime.hpp"
#include "train/trainer.hpp"

namespace mt::cli {

int train(const Args& args) {
  for (const auto& a : args)
    if (a == "--help") {
      std::cout << "usage: moetrain train --config FILE [--resume FILE|latest] [--device cpu|cuda] "
                   "[--section.key value ...]\n\n"
                << config_help();
      return 0;
    }
  Args rest = args;
  std::string resume = take_flag(rest, "--resume");
  const Device device = parse_device(take_flag(rest, "--device", "cpu"));
  const Config cfg = parse_config(rest);
  std::vector<std::string> damaged;  // newer checkpoints --resume latest passed over
  if (resume == "latest") resume = latest_checkpoint(cfg.run_dir(), damaged);
  Runtime rt;
  try {
    rt = make_runtime(cfg, device);
  } catch (const Error& e) {
    if (resume.empty()) throw;
    fail("{}: cannot resume on this layout: {}", resume, e.what());
  }
  if (rt.root())
    for (const std::string& problem : damaged)
      std::cerr << "moetrain: warning: --resume latest passes over " << problem << "\n";
  const RunDirLock lock = claim_run_dir(cfg, !resume.empty(), *rt.groups.world);
  install_preemption_handlers();
  mt::train(cfg, rt, false, resume);
  return 0;
}

}  // namespace mt::cli
