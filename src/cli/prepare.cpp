// moetrain prepare: trains the tokenizer on train.txt and writes train/valid/test token files.
#include <fmt/format.h>
#include <omp.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "io/tokenizer.hpp"
#include "io/tokens.hpp"
#include "tensor/error.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace mt::cli {

namespace {
// The file's text, cut after the last whole line within max_bytes (0: all of it).
std::string read_text(const fs::path& path, int64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in, "prepare: cannot read '{}' (run tools/extract_corpus.py first?)", path.string());
  std::ostringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  if (max_bytes > 0 && int64_t(text.size()) > max_bytes) {
    const size_t cut = text.rfind('\n', size_t(max_bytes));
    text.resize(cut == std::string::npos ? size_t(max_bytes) : cut + 1);
  }
  MT_CHECK(text.find_first_not_of(" \t\r\n") != std::string::npos, "prepare: '{}' is empty",
           path.string());
  return text;
}
}  // namespace

int prepare(const Args& args) {
  std::string input = "data/raw", output = "data/sword";
  int vocab = 4096;
  int64_t max_bytes = 0, sentences = 300000;
  po::options_description d("moetrain prepare");
  // clang-format off
  d.add_options()
    ("help", "this help")
    ("input", po::value(&input)->default_value(input), "folder with train.txt, valid.txt, test.txt")
    ("output", po::value(&output)->default_value(output), "folder for tokenizer.model and {train,valid,test}.h5")
    ("vocab_size", po::value(&vocab)->default_value(vocab), "SentencePiece vocabulary size")
    ("max_bytes", po::value(&max_bytes)->default_value(max_bytes), "use at most this many bytes of each split (0: all)")
    ("sentences", po::value(&sentences)->default_value(sentences), "lines sampled to train the tokenizer");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(d).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    fail("prepare: {}", e.what());
  }
  if (vm.count("help")) {
    std::cout << "usage: moetrain prepare [--input DIR] [--output DIR] [--vocab_size V] ...\n\n" << d;
    return 0;
  }
  MT_CHECK(vocab >= 300, "prepare: vocab_size {} is too small (byte fallback alone needs 259)",
           vocab);
  fs::create_directories(output);
  const fs::path in(input), out(output);
  const std::string train_text = read_text(in / "train.txt", max_bytes);
  // The tokenizer trains on exactly the text the model will see.
  const fs::path train_copy = out / "tokenizer_train.txt";
  std::ofstream(train_copy, std::ios::binary) << train_text;
  fmt::print("prepare: training a {}-piece SentencePiece model on {} ({:.1f} MB)\n", vocab,
             (in / "train.txt").string(), train_text.size() / 1e6);
  std::fflush(stdout);
  Tokenizer::train(train_copy.string(), (out / "tokenizer").string(), vocab, sentences,
                   omp_get_max_threads());
  fs::remove(train_copy);
  const Tokenizer tok((out / "tokenizer.model").string());
  for (const char* split : {"train", "valid", "test"}) {
    const std::string text = split == std::string("train")
                                 ? train_text
                                 : read_text(in / (std::string(split) + ".txt"), max_bytes);
    const std::vector<int32_t> ids = tok.encode(text);
    const fs::path path = out / (std::string(split) + ".h5");
    write_tokens(path.string(), ids, tok.vocab_size(),
                 (in / (std::string(split) + ".txt")).string());
    fmt::print("prepare: {} {} tokens ({:.2f} bytes/token) -> {}\n", split, ids.size(),
               double(text.size()) / ids.size(), path.string());
  }
  return 0;
}

}  // namespace mt::cli
