// moetrain generate: text from a checkpoint, greedy or sampled, on any layout; the tokenizer comes
// from the checkpoint (or, for one written before checkpoints held it, from data.dir).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>

#include "cli/commands.hpp"
#include "io/checkpoint.hpp"
#include "io/config.hpp"
#include "io/h5.hpp"
#include "io/tokenizer.hpp"
#include "tensor/error.hpp"
#include "train/evaluate.hpp"
#include "train/generate.hpp"

namespace po = boost::program_options;

namespace mt::cli {

int generate(const Args& args) {
  std::string checkpoint, prompt, device = "cpu";
  GenerateConfig g;
  bool ids = false;
  po::options_description d("moetrain generate (config keys such as --dist.ep_size also accepted)");
  // clang-format off
  d.add_options()
    ("help", "this help")
    ("checkpoint", po::value(&checkpoint), "checkpoint file (required)")
    ("prompt", po::value(&prompt), "the text to continue (required; a final newline is kept)")
    ("tokens", po::value(&g.tokens)->default_value(g.tokens), "new tokens")
    ("temperature", po::value(&g.temperature)->default_value(g.temperature, "0"), "0: greedy; > 0: sample from softmax(logits / temperature)")
    ("top_k", po::value(&g.top_k)->default_value(g.top_k), "sample among the k most likely tokens (0: all)")
    ("seed", po::value(&g.seed)->default_value(g.seed), "the draws' seed (the same seed, the same text)")
    ("ids", po::bool_switch(&ids), "also print the prompt's and the new tokens' ids, and each new token's log-probability")
    ("device", po::value(&device)->default_value(device), "cpu | cuda (one GPU per rank, by local rank)");
  // clang-format on
  po::variables_map vm;
  const Args rest = take_options(args, d, vm, "generate");
  if (vm.count("help")) {
    std::cout << "usage: moetrain generate --checkpoint FILE --prompt TEXT [--tokens N] "
                 "[--temperature T --top_k K --seed S]\n\n"
              << d;
    return 0;
  }
  MT_CHECK(!checkpoint.empty(), "generate: --checkpoint FILE is required");
  MT_CHECK(vm.count("prompt"), "generate: --prompt TEXT is required");
  MT_CHECK(g.tokens > 0 && g.temperature >= 0 && g.top_k >= 0,
           "generate: --tokens {} --temperature {} --top_k {} (tokens > 0, the others >= 0)",
           g.tokens, g.temperature, g.top_k);
  const Config cfg = parse_config(rest, checkpoint_config(checkpoint));
  const std::string stored = checkpoint_tokenizer(checkpoint);
  const std::string file = cfg.data_dir + "/tokenizer.model";
  MT_CHECK(!stored.empty() || std::filesystem::exists(file),
           "generate: {} holds no tokenizer and {} is missing (--data.dir DIR)", checkpoint, file);
  const Tokenizer tok =
      stored.empty() ? Tokenizer(file) : Tokenizer(stored, Tokenizer::From::Bytes);
  // The encoder ends every line with the end-of-line id; a prompt's last line goes on.
  std::vector<int32_t> start = tok.encode(prompt);
  if (!prompt.ends_with('\n')) start.pop_back();
  MT_CHECK(!start.empty(), "generate: --prompt '{}' holds no token", prompt);
  const int64_t vocab = h5::shape_of(h5::File(checkpoint, h5::File::Read), "/model/wte")[0];
  MT_CHECK(tok.vocab_size() == vocab, "generate: the tokenizer has {} pieces, the model {}",
           tok.vocab_size(), vocab);
  Runtime rt = make_runtime(cfg, parse_device(device));
  ParamRegistry reg;
  const Gpt model = build_model(cfg, rt, vocab, reg);
  load_model(checkpoint, reg);
  const Generated out = mt::generate(model, rt, checkpoint_eval_context(cfg, checkpoint), start, g);
  if (rt.root()) {
    fmt::print("{}{}\n", prompt, tok.decode(out.ids));
    if (ids)
      fmt::print("generate: ids {} | {} | logprobs {:.6f}\n", fmt::join(start, " "),
                 fmt::join(out.ids, " "), fmt::join(out.logprobs, " "));
  }
  return 0;
}

}  // namespace mt::cli
