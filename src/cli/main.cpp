// moetrain entry point: MPI start-up, subcommand dispatch, and the one place where errors
// become a message and a non-zero exit on every rank.
#include <mpi.h>

#include <cstdio>
#include <cstring>
#include <exception>

#include "cli/commands.hpp"
#include "comm/hang_watch.hpp"
#include "io/config.hpp"
#include "tensor/error.hpp"

namespace {

constexpr const char* kUsage = R"(usage: moetrain <command> [options]

commands:
  prepare   train the SentencePiece tokenizer and write token files (HDF5)
  train     train a model: moetrain train --config configs/x.ini [--section.key value ...]
  eval      loss and perplexity of a checkpoint on a split
  bench     benchmarks: moetrain bench step|gemm|moe|a2a --config configs/x.ini
  inspect   summary of a checkpoint or results file: moetrain inspect FILE
  exits     JEI-DNN early exits on a frozen checkpoint: moetrain exits --checkpoint FILE
  generate  text from a checkpoint: moetrain generate --checkpoint FILE --prompt TEXT

'moetrain <command> --help' (or -h) lists a command's options; 'moetrain --version' prints the
version.
)";

int dispatch(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("moetrain %s\n", MOETRAIN_VERSION);
    return 0;
  }
  const std::string cmd = argv[1];
  mt::cli::Args args(argv + 2, argv + argc);
  for (std::string& a : args) {
    mt::check_placeholders(a, "the command line");
    if (a == "-h") a = "--help";  // every command answers both
  }
  if (cmd == "prepare") return mt::cli::prepare(args);
  if (cmd == "train") return mt::cli::train(args);
  if (cmd == "eval") return mt::cli::eval(args);
  if (cmd == "bench") return mt::cli::bench(args);
  if (cmd == "inspect") return mt::cli::inspect(args);
  if (cmd == "exits") return mt::cli::exits(args);
  if (cmd == "generate") return mt::cli::generate(args);
  mt::fail("unknown command '{}' (prepare, train, eval, bench, inspect, exits, generate)", cmd);
}

// After a failure: true when every rank failed too, within `seconds` (a barrier on a communicator
// only failures use, so it cannot match a collective of the run); then the ranks need no abort,
// and none is killed before it has printed its message.
bool all_failed(MPI_Comm failures, double seconds) {
  MPI_Request barrier;
  MPI_Ibarrier(failures, &barrier);
  return mt::hang_watch::wait_for(1, &barrier, seconds);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MPI_Comm failures;
  MPI_Comm_dup(MPI_COMM_WORLD, &failures);
  int rc = 0;
  try {
    rc = dispatch(argc, argv);
  } catch (const std::exception& e) {
    const bool ours = dynamic_cast<const mt::Error*>(&e) != nullptr;
    if (world > 1)
      std::fprintf(stderr, "moetrain: rank %d: error: %s%s\n", rank,
                   ours ? "" : "internal: ", e.what());
    else
      std::fprintf(stderr, "moetrain: error: %s%s\n", ours ? "" : "internal: ", e.what());
    std::fflush(stderr);
    // A rank that fails alone must not leave the others waiting in a collective.
    if (world > 1 && !all_failed(failures, 2.0)) MPI_Abort(MPI_COMM_WORLD, 2);
    rc = 2;
  }
  MPI_Comm_free(&failures);
  MPI_Finalize();
  return rc;
}
