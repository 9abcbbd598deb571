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
  Runtime rt;
  try {
    rt = make_runtime(cfg, device);
  } catch (const Error& e) {
    if (resume.empty()) throw;
    fail("{}: cannot resume on this layout: {}", resume == "latest" ? "--resume latest" : resume,
         e.what());
  }
  const RunDirLock lock = claim_run_dir(cfg, !resume.empty(), *rt.groups.world);
  if (resume == "latest") {            // the folder is ours now: nothing writes a newer checkpoint
    std::vector<std::string> damaged;  // newer checkpoints passed over
    resume = latest_checkpoint(cfg.run_dir(), damaged);
    if (rt.root())
      for (const std::string& problem : damaged)
        std::cerr << "moetrain: warning: --resume latest passes over " << problem << "\n";
  }
  install_preemption_handlers();
  mt::train(cfg, rt, false, resume);
  return 0;
}

}  // namespace mt::cli
