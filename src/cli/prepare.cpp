// moetrain prepare: the token files {train,valid,test}.h5, from text (encoded with a SentencePiece
// model trained on train.txt, or with one given) or from token ids made elsewhere (.bin files).
#include <fmt/format.h>
#include <omp.h>

#include <boost/program_options.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli/commands.hpp"
#include "io/tokenizer.hpp"
#include "io/tokens.hpp"
#include "tensor/error.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace mt::cli {

namespace {
// The file's bytes, cut to at most max_bytes (0: all of them).
std::string read_bytes(const fs::path& path, int64_t max_bytes, const char* hint) {
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in, "prepare: cannot read '{}'{}", path.string(), hint);
  std::ostringstream s;
  s << in.rdbuf();
  std::string bytes = s.str();
  if (max_bytes > 0 && int64_t(bytes.size()) > max_bytes) bytes.resize(size_t(max_bytes));
  return bytes;
}

// The text, cut after the last whole line within max_bytes.
std::string read_text(const fs::path& path, int64_t max_bytes) {
  std::string text = read_bytes(path, 0, " (run tools/extract_corpus.py first?)");
  if (max_bytes > 0 && int64_t(text.size()) > max_bytes) {
    const size_t cut = text.rfind('\n', size_t(max_bytes));
    text.resize(cut == std::string::npos ? size_t(max_bytes) : cut + 1);
  }
  MT_CHECK(text.find_first_not_of(" \t\r\n") != std::string::npos, "prepare: '{}' is empty",
           path.string());
  return text;
}

// Raw little-endian ids of `width` bytes (2: uint16, 4: int32), each inside the vocabulary.
std::vector<int32_t> read_ids(const fs::path& path, int width, int64_t vocab, int64_t max_bytes) {
  const std::string bytes = read_bytes(path, max_bytes - max_bytes % width, "");
  MT_CHECK(!bytes.empty(), "prepare: '{}' is empty", path.string());
  MT_CHECK(bytes.size() % width == 0,
           "prepare: '{}' holds {} bytes, not a whole number of {}-byte ids", path.string(),
           bytes.size(), width);
  std::vector<int32_t> ids(bytes.size() / width);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (width == 2) {
      uint16_t v;
      std::memcpy(&v, bytes.data() + 2 * i, 2);
      ids[i] = v;
    } else {
      std::memcpy(&ids[i], bytes.data() + 4 * i, 4);
    }
    MT_CHECK(ids[i] >= 0 && ids[i] < vocab,
             "prepare: '{}' holds id {} at position {}, outside the vocabulary of {}",
             path.string(), ids[i], i, vocab);
  }
  return ids;
}
}  // namespace

int prepare(const Args& args) {
  std::string input = "data/raw", output = "data/sword", tokenizer, tokens;
  int vocab = 4096;
  int64_t max_bytes = 0, sentences = 300000;
  po::options_description d("moetrain prepare");
  // clang-format off
  d.add_options()
    ("help", "this help")
    ("input", po::value(&input)->default_value(input), "folder with train.txt, valid.txt, test.txt (or .bin with --tokens)")
    ("output", po::value(&output)->default_value(output), "folder for tokenizer.model and {train,valid,test}.h5")
    ("vocab_size", po::value(&vocab)->default_value(vocab), "SentencePiece vocabulary size (with --tokens: the ids' vocabulary)")
    ("tokenizer", po::value(&tokenizer), "an existing SentencePiece model: encode with it, train none (copied to the output)")
    ("tokens", po::value(&tokens), "uint16 or int32: the input holds {train,valid,test}.bin, ids already made (raw little-endian, as nanoGPT's); needs --vocab_size or --tokenizer")
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
    std::cout << "usage: moetrain prepare [--input DIR] [--output DIR] [--vocab_size V] "
                 "[--tokenizer MODEL] [--tokens uint16|int32] ...\n\n"
              << d;
    return 0;
  }
  MT_CHECK(tokens.empty() || tokens == "uint16" || tokens == "int32",
           "prepare: --tokens '{}' is not uint16 or int32", tokens);
  const bool given_vocab = !vm["vocab_size"].defaulted();
  const fs::path in(input), out(output), model = out / "tokenizer.model";
  std::optional<Tokenizer> tok;
  if (!tokenizer.empty()) {
    tok.emplace(tokenizer);
    MT_CHECK(!given_vocab || vocab == tok->vocab_size(),
             "prepare: --vocab_size {} differs from the {} pieces of the tokenizer '{}'", vocab,
             tok->vocab_size(), tokenizer);
    vocab = tok->vocab_size();
  }
  MT_CHECK(tokens.empty() || given_vocab || tok,
           "prepare: --tokens needs --vocab_size (the ids' vocabulary) or --tokenizer");
  MT_CHECK(!tokens.empty() || tok || vocab >= 300,
           "prepare: vocab_size {} is too small (byte fallback alone needs 259)", vocab);
  fs::create_directories(output);
  if (tok) {
    std::error_code error;
    if (!fs::exists(model) || !fs::equivalent(tokenizer, model))
      fs::copy_file(tokenizer, model, fs::copy_options::overwrite_existing, error);
    MT_CHECK(!error, "prepare: cannot copy the tokenizer to '{}': {}", model.string(),
             error.message());
  } else if (!tokens.empty()) {
    fs::remove(model);  // an earlier run's model would decode these ids wrongly
  }
  std::string train_text;
  if (tokens.empty()) train_text = read_text(in / "train.txt", max_bytes);
  if (tokens.empty() && !tok) {
    // The tokenizer trains on exactly the text the model will see.
    const fs::path train_copy = out / "tokenizer_train.txt";
    std::ofstream(train_copy, std::ios::binary) << train_text;
    fmt::print("prepare: training a {}-piece SentencePiece model on {} ({:.1f} MB)\n", vocab,
               (in / "train.txt").string(), train_text.size() / 1e6);
    std::fflush(stdout);
    Tokenizer::train(train_copy.string(), (out / "tokenizer").string(), vocab, sentences,
                     omp_get_max_threads());
    fs::remove(train_copy);
    tok.emplace(model.string());
  }
  for (const std::string split : {"train", "valid", "test"}) {
    const fs::path source = in / (split + (tokens.empty() ? ".txt" : ".bin"));
    const fs::path path = out / (split + ".h5");
    std::vector<int32_t> ids;
    std::string kind = tokens;
    if (tokens.empty()) {
      const std::string text = split == "train" ? train_text : read_text(source, max_bytes);
      ids = tok->encode(text);
      kind = fmt::format("{:.2f} bytes/token", double(text.size()) / ids.size());
    } else {
      ids = read_ids(source, tokens == "uint16" ? 2 : 4, vocab, max_bytes);
    }
    write_tokens(path.string(), ids, vocab, source.string());
    fmt::print("prepare: {} {} tokens ({}) -> {}\n", split, ids.size(), kind, path.string());
  }
  return 0;
}

}  // namespace mt::cli
