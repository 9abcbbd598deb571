// Token files and batching.
#include "io/tokens.hpp"

#include <algorithm>
#include <cmath>

#include "io/h5.hpp"
#include "tensor/error.hpp"
#include "tensor/rng.hpp"

namespace mt {

namespace {
// Token files are chunked in 2^16 tokens (256 KB), so a window decodes little: a read took 0.14 ms
// here, 2 ms of the demo's 300 ms step. No chunk cache: HDF5 1.10's held every chunk read
// (64 MB of heap for a 64 MB split under a 1 MB limit), and the page cache holds the file.
constexpr int64_t kChunkTokens = int64_t(1) << 16;
constexpr size_t kCacheBytes = 0;
}  // namespace

void write_tokens(const std::string& path, const std::vector<int32_t>& tokens, int64_t vocab,
                  const std::string& source) {
  h5::File f(path, h5::File::Create);
  h5::write(f, "/tokens", tokens.data(), {int64_t(tokens.size())}, kChunkTokens);
  h5::set_attr(f, "/", "format", std::string("moetrain-tokens"));
  h5::set_attr(f, "/", "vocab_size", vocab);
  h5::set_attr(f, "/", "source", source);
}

void TokenSplit::read(int64_t offset, int64_t count, int32_t* out) const {
  file->read(offset, count, out);
}

void TokenSplit::for_each_block(const std::function<void(const int32_t*, int64_t)>& fn) const {
  const int64_t block = kChunkTokens;
  std::vector<int32_t> buffer(std::min(block, size));
  for (int64_t offset = 0; offset < size; offset += block) {
    const int64_t n = std::min(block, size - offset);
    read(offset, n, buffer.data());
    fn(buffer.data(), n);
  }
}

TokenSplit read_tokens(const std::string& path) {
  TokenSplit s;
  s.path = path;
  {
    const h5::File f(path, h5::File::Read);  // the attributes first: a damaged file fails here
    MT_CHECK(h5::attr_string(f, "/", "format") == "moetrain-tokens",
             "{}: not a moetrain token file", path);
    s.vocab = h5::attr_int(f, "/", "vocab_size");
  }
  s.file = std::make_shared<const h5::Int32Slices>(path, "/tokens", kCacheBytes);
  s.size = s.file->size();
  MT_CHECK(s.size > 0, "{}: the token file is empty", path);
  s.for_each_block([&](const int32_t* t, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      MT_CHECK(t[i] >= 0 && t[i] < s.vocab, "{}: token id {} outside vocabulary [0, {})", path,
               t[i], s.vocab);
  });
  return s;
}

Batches::Batches(const TokenSplit& split, int64_t seq_len)
    : split_(split), seq_len_(seq_len), window_(seq_len + 1) {
  MT_CHECK(split.size > seq_len + 1, "{}: {} tokens is too short for windows of {} tokens",
           split.path, split.size, seq_len + 1);
}

void Batches::copy_window(int64_t offset, int64_t row, const Tensor& tokens,
                          const Tensor& targets) const {
  split_.read(offset, seq_len_ + 1, window_.data());
  std::copy_n(window_.begin(), seq_len_, tokens.i32() + row * seq_len_);
  std::copy_n(window_.begin() + 1, seq_len_, targets.i32() + row * seq_len_);
}

void Batches::random(uint64_t seed, int64_t step, int64_t first_row, const Tensor& tokens,
                     const Tensor& targets) const {
  const Rng rng(seed, stream_id({name_hash("data"), uint64_t(step)}));
  const uint64_t span = uint64_t(split_.size - seq_len_);
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
  train.for_each_block([&](const int32_t* t, int64_t n) {
    for (int64_t i = 0; i < n; ++i) counts[t[i]] += 1.0;
  });
  const double total = double(train.size) + double(train.vocab);
  double nll = 0;
  eval.for_each_block([&](const int32_t* t, int64_t n) {
    for (int64_t i = 0; i < n; ++i) nll -= std::log(counts[t[i]] / total);
  });
  return std::exp(nll / double(eval.size));
}

}  // namespace mt
