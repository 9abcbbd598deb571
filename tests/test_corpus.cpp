// Tests on the real corpus slice (ctest fixture corpus_slice): tokenizer round trip, token files,
// and a short training run whose loss falls, deterministically, without per-step allocations.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/h5.hpp"
#include "io/tokenizer.hpp"
#include "io/tokens.hpp"
#include "train/runtime.hpp"
#include "train/trainer.hpp"

namespace mt {
namespace {

const std::string kData = MT_BINARY_DIR "/testdata";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Config tiny_config(const std::string& name, int64_t steps) {
  Config c = parse_config({"--run.name",           name,
                           "--run.results_dir",    kData + "/results",
                           "--data.dir",           kData + "/slice",
                           "--model.seq_len",      "64",
                           "--model.d_model",      "64",
                           "--model.n_layer",      "2",
                           "--model.n_head",       "2",
                           "--model.d_ff",         "256",
                           "--train.batch_size",   "8",
                           "--train.lr",           "3e-3",
                           "--train.warmup",       "10",
                           "--train.eval_every",   "0",
                           "--train.eval_batches", "8",
                           "--train.steps",        std::to_string(steps)});
  return c;
}

TrainResult run(const Config& c) {
  Runtime rt = make_runtime(c);
  return train(c, rt, /*quiet=*/true);
}

std::vector<double> series(const std::string& path, const std::string& name) {
  h5::File f(path, h5::File::Read);
  const Shape s = h5::shape_of(f, name);
  std::vector<float> v(s.numel());
  h5::read(f, name, v.data(), s);
  return {v.begin(), v.end()};
}

TEST(Tokenizer, RoundTripsRealText) {
  const Tokenizer tok(kData + "/slice/tokenizer.model");
  EXPECT_EQ(tok.vocab_size(), 1024);
  std::string text = read_file(kData + "/raw/valid.txt").substr(0, 200000);
  text.resize(text.rfind('\n') + 1);
  const std::vector<int32_t> ids = tok.encode(text);
  EXPECT_LT(ids.size(), text.size() / 2);  // subword units, not bytes
  EXPECT_EQ(tok.decode(ids), text);
  // Characters absent from the training text still round-trip through byte fallback.
  const std::string rare = "naïve café — Σ 漢字\n";
  EXPECT_EQ(tok.decode(tok.encode(rare)), rare);
}

TEST(Tokens, SplitsAreValidAndDisjointText) {
  const TokenSplit train = read_tokens(kData + "/slice/train.h5");
  const TokenSplit valid = read_tokens(kData + "/slice/valid.h5");
  EXPECT_EQ(train.vocab, 1024);
  EXPECT_GT(train.size, 100000);
  EXPECT_GT(valid.size, 10000);
  // Validation text is unseen (Psalms), but drawn from the same language: the unigram model of
  // the training split explains it far better than a uniform guess.
  const double ppl = unigram_perplexity(train, valid);
  EXPECT_LT(ppl, 0.5 * train.vocab);
  EXPECT_GT(ppl, 10.0);
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MT_ADDRESS_SANITIZER
#endif
#endif
#ifdef MT_ADDRESS_SANITIZER
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif

// This process's anonymous resident memory (the heap; not the page cache of files it reads).
double anonymous_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("RssAnon:")) return std::stod(line.substr(8)) / 1024;
  return -1;
}

// A split is read window by window, not held in memory: opening a 64 MB token file and cutting
// 200 batches from it grows the heap by less than 8 MB, and the
// windows hold consecutive tokens of the file, their targets one ahead.
TEST(Tokens, ASplitIsReadInWindowsNotWhole) {
  const std::string path = kData + "/results/big_tokens.h5";
  std::filesystem::create_directories(kData + "/results");
  const int64_t n = int64_t(16) << 20, seq = 64;
  auto token = [](int64_t i) { return int32_t(i % 1000); };
  {
    std::vector<int32_t> ids(n);
    for (int64_t i = 0; i < n; ++i) ids[i] = token(i);
    write_tokens(path, ids, 1000, "generated");
  }
  const double before = anonymous_mb();
  const TokenSplit split = read_tokens(path);
  EXPECT_EQ(split.size, n);
  const Batches batches(split, seq);
  std::vector<int32_t> x(8 * seq), y(8 * seq);
  const Tensor tokens{x.data(), {8, seq}, DType::I32}, targets{y.data(), {8, seq}, DType::I32};
  for (int step = 0; step < 200; ++step) {
    batches.random(1, step, 0, tokens, targets);
    for (int64_t i = 0; i < 8 * seq; ++i) {  // consecutive tokens, also across chunks
      ASSERT_EQ(y[i], (x[i] + 1) % 1000) << "step " << step << " element " << i;
      if (i % seq > 0) {
        ASSERT_EQ(x[i], y[i - 1]);
      }
    }
  }
  const double grown = anonymous_mb() - before;
  // AddressSanitizer's quarantine keeps freed memory resident: there the heap grows whatever the
  // reader holds, and only the windows are checked.
  if (!kAddressSanitizer) {
    EXPECT_LT(grown, 8.0) << "MB of heap for a 64 MB split";
  }
  std::filesystem::remove(path);
}

TEST(Training, LossFallsOnTheRealCorpus) {
  const TrainResult r = run(tiny_config("loss_falls", 120));
  EXPECT_LT(r.final_loss, r.first_loss - 1.5) << "first " << r.first_loss;
  EXPECT_LT(r.valid_ppl, 0.6 * r.unigram_ppl);
  EXPECT_EQ(r.arena_allocations_after_first_step, 0u);
  const auto loss = series(kData + "/results/loss_falls/results.h5", "/train/loss");
  ASSERT_EQ(loss.size(), 120u);
  EXPECT_NEAR(loss.back(), r.final_loss, 1e-5);
  EXPECT_EQ(series(kData + "/results/loss_falls/results.h5", "/valid/ppl").size(), 1u);
}

TEST(Training, IsAPureFunctionOfConfigAndSeed) {
  run(tiny_config("det_a", 12));
  run(tiny_config("det_b", 12));
  Config other = tiny_config("det_c", 12);
  other.seed = 2;
  run(other);
  const auto a = series(kData + "/results/det_a/results.h5", "/train/loss");
  const auto b = series(kData + "/results/det_b/results.h5", "/train/loss");
  const auto c = series(kData + "/results/det_c/results.h5", "/train/loss");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

}  // namespace
}  // namespace mt
