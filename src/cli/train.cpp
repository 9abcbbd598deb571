// moetrain train: parse the configuration and run the trainer.
#include <iostream>

#include "cli/commands.hpp"
#include "io/checkpoint.hpp"
#include "io/config.hpp"
#include "tensor/error.hpp"
#include "train/preemption.hpp"
#include "train/runtime.hpp"
#include "train/trainer.hpp"

namespace mt::cli {

int train(const Args& args) {
  for (const auto& a : args)
    if (a == "--help") {
      std::cout << "usage: moetrain train --config FILE [--resume FILE|latest] [--section.key "
                   "value ...]\n\n"
                << config_help();
      return 0;
    }
  // --resume FILE|latest is the one flag that is not a config key.
  std::string resume;
  Args rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--resume") {
      MT_CHECK(i + 1 < args.size(), "train: --resume needs a checkpoint file or 'latest'");
      resume = args[++i];
    } else {
      rest.push_back(args[i]);
    }
  }
  const Config cfg = parse_config(rest);
  if (resume == "latest") resume = latest_checkpoint(cfg.run_dir());
  Runtime rt;
  try {
    rt = make_runtime(cfg);
  } catch (const Error& e) {
    if (resume.empty()) throw;
    fail("{}: cannot resume on this layout: {}", resume, e.what());
  }
  install_preemption_handlers();
  mt::train(cfg, rt, false, resume);
  return 0;
}

}  // namespace mt::cli
