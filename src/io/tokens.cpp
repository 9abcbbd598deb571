// Token files and batching.
#include "io/tokens.hpp"

#include <cmath>

#include "io/h5.hpp"
#include "tensor/error.hpp"
#include "tensor/rng.hpp"

namespace mt {

void write_tokens(const std::string& path, const std::vector<int32_t>& tokens, int64_t vocab,
                  const std::string& source) {
  h5::File f(path, h5::File::Create);
  h5::write(f, "/tokens", tokens.data(), {int64_t(tokens.size())});
  h5::set_attr(f, "/", "format", std::string("moetrain-tokens"));
  h5::set_attr(f, "/", "vocab_size", vocab);
  h5::set_attr(f, "/", "source", source);
}

TokenSplit read_tokens(const std::string& path) {
  TokenSplit s;
  s.path = path;
  h5::File f(path, h5::File::Read);
  MT_CHECK(h5::attr_string(f, "/", "format") == "moetrain-tokens", "{}: not a moetrain token file",
           path);
  s.vocab = h5::attr_int(f, "/", "vocab_size");
  s.tokens = h5::read_i32(f, "/tokens");
  MT_CHECK(!s.tokens.empty(), "{}: the token file is empty", path);
  for (int32_t t : s.tokens)
    MT_CHECK(t >= 0 && t < s.vocab, "{}: token id {} outside vocabulary [0, {})", path, t, s.vocab);
  return s;
}

Batches::Batches(const TokenSplit& split, int64_t seq_len) : split_(split), seq_len_(seq_len) {
  MT_CHECK(int64_t(split.tokens.size()) > seq_len + 1,
           "{}: {} tokens is too short for windows of {} tokens", split.path, split.tokens.size(),
           seq_len + 1);
}

void Batches::copy_window(int64_t offset, int64_t row, const Tensor& tokens,
                          const Tensor& targets) const {
  const int32_t* src = split_.tokens.data() + offset;
  int32_t *x = tokens.i32() + row * seq_len_, *y = targets.i32() + row * seq_len_;
  for (int64_t t = 0; t < seq_len_; ++t) {
    x[t] = src[t];
    y[t] = src[t + 1];
  }
}

void Batches::random(uint64_t seed, int64_t step, int64_t first_row, const Tensor& tokens,
                     const Tensor& targets) const {
  const Rng rng(seed, stream_id({name_hash("data"), uint64_t(step)}));
  const uint64_t span = split_.tokens.size() - seq_len_;
  for (int64_t r = 0; r < tokens.size(0); ++r)
    copy_window(int64_t(rng.below(uint64_t(first_row + r), span)), r, tokens, targets);
}

void Batches::fixed(int64_t first, int64_t stride, int64_t end, const Tensor& tokens,
                    const Tensor& targets) const {
  for (int64_t r = 0; r < tokens.size(0); ++r) {
    const int64_t w = first + r * stride;
    if (w < end) {
      copy_window(w * seq_len_, r, tokens, targets);
    } else {
      int32_t *x = tokens.i32() + r * seq_len_, *y = targets.i32() + r * seq_len_;
      for (int64_t t = 0; t < seq_len_; ++t) {
        x[t] = 0;
        y[t] = -1;
      }
    }
  }
}

double unigram_perplexity(const TokenSplit& train, const TokenSplit& eval) {
  std::vector<double> counts(train.vocab, 1.0);
  for (int32_t t : train.tokens) counts[t] += 1.0;
  const double total = double(train.tokens.size()) + double(train.vocab);
  double nll = 0;
  for (int32_t t : eval.tokens) nll -= std::log(counts[t] / total);
  return std::exp(nll / double(eval.tokens.size()));
}

}  // namespace mt
