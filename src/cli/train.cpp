// moetrain train: parse the configuration and run the trainer.
#include <iostream>

#include "cli/commands.hpp"
#include "io/config.hpp"
#include "train/runtime.hpp"
#include "train/trainer.hpp"

namespace mt::cli {

int train(const Args& args) {
  for (const auto& a : args)
    if (a == "--help") {
      std::cout << "usage: moetrain train --config FILE [--section.key value ...]\n\n"
                << config_help();
      return 0;
    }
  const Config cfg = parse_config(args);
  Runtime rt = make_runtime(cfg);
  mt::train(cfg, rt);
  return 0;
}

}  // namespace mt::cli
