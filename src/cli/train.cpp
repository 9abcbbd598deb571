// moetrain train: parse the configuration and run the trainer.
#include <mpi.h>

#include <iostream>

#include "cli/commands.hpp"
#include "io/config.hpp"
#include "tensor/error.hpp"
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
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MT_CHECK(world == 1, "train: this build trains on one rank; started on {} ranks", world);
  mt::train(cfg);
  return 0;
}

}  // namespace mt::cli
