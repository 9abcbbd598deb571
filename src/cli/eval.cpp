// moetrain eval: loss and perplexity of a checkpoint on a split of the prepared corpus.
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <cmath>
#include <iostream>

#include "cli/commands.hpp"
#include "io/checkpoint.hpp"
#include "io/config.hpp"
#include "io/tokens.hpp"
#include "tensor/error.hpp"
#include "train/evaluate.hpp"
#include "train/runtime.hpp"

namespace po = boost::program_options;

namespace mt::cli {

int eval(const Args& args) {
  std::string checkpoint, split = "valid", device = "cpu";
  int64_t batches = 0;
  po::options_description d("moetrain eval (config keys such as --data.dir also accepted)");
  // clang-format off
  d.add_options()
    ("help", "this help")
    ("checkpoint", po::value(&checkpoint), "checkpoint file (required)")
    ("split", po::value(&split)->default_value(split), "valid | test | train")
    ("batches", po::value(&batches)->default_value(batches), "batches of windows (0: the whole split)")
    ("device", po::value(&device)->default_value(device), "cpu | cuda (one GPU per rank, by local rank)");
  // clang-format on
  po::variables_map vm;
  const Args rest = take_options(args, d, vm, "eval");
  if (vm.count("help")) {
    std::cout << "usage: moetrain eval --checkpoint FILE [--split valid|test|train] [--section.key "
                 "value ...]\n\n"
              << d;
    return 0;
  }
  MT_CHECK(!checkpoint.empty(), "eval: --checkpoint FILE is required");
  MT_CHECK(split == "valid" || split == "test" || split == "train",
           "eval: --split '{}' (valid, test or train)", split);
  const Config cfg = parse_config(rest, checkpoint_config(checkpoint));
  const TokenSplit data = read_tokens(cfg.data_dir + "/" + split + ".h5");
  Runtime rt = make_runtime(cfg, parse_device(device));
  const int64_t micro = micro_batch(cfg, rt);
  ParamRegistry reg;
  const Gpt model = build_model(cfg, rt, data.vocab, reg);
  load_model(checkpoint, reg);
  Arena arena(rt.device);
  const LossValue l = evaluate(model, arena, Batches(data, cfg.model.seq_len), cfg.batch_size,
                               batches, rt, checkpoint_eval_context(cfg, checkpoint), micro);
  if (rt.root())
    fmt::print("eval: {} on {} | {} | {} tokens | loss {:.6f} | ppl {:.3f}\n", checkpoint,
               data.path, rt.describe(), l.count, l.mean(), std::exp(l.mean()));
  return 0;
}

}  // namespace mt::cli
