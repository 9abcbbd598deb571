// Tokenized corpus splits in HDF5 (/tokens int32 [N]; root attrs vocab_size, source) and the
// batches cut from them: random windows for training, fixed windows for evaluation. A split is
// read window by window from the open file (HDF5 hyperslabs), never held whole in memory.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace mt {

namespace h5 {
class Int32Slices;
}

struct TokenSplit {
  std::string path;
  int64_t vocab = 0, size = 0;  // size: tokens in the split
  std::shared_ptr<const h5::Int32Slices> file;
  // Tokens [offset, offset + count) into out.
  void read(int64_t offset, int64_t count, int32_t* out) const;
  // fn(tokens, n) over the whole split in order, in blocks of at most 2^16 tokens.
  void for_each_block(const std::function<void(const int32_t*, int64_t)>& fn) const;
};

void write_tokens(const std::string& path, const std::vector<int32_t>& tokens, int64_t vocab,
                  const std::string& source);
// Opens a split and reads it through once, in blocks: throws mt::Error naming the file if it is
// missing, corrupt (a chunk's checksum), empty or out of vocabulary.
TokenSplit read_tokens(const std::string& path);

// Windows of seq_len + 1 tokens: inputs are the first seq_len, targets the last seq_len.
class Batches {
 public:
  Batches(const TokenSplit& split, int64_t seq_len);
  // Row r of the global batch at `step` starts at a uniform offset drawn from (seed, step, r);
  // fills the rows [first_row, first_row + tokens.size(0)).
  void random(uint64_t seed, int64_t step, int64_t first_row, const Tensor& tokens,
              const Tensor& targets) const;
  // Non-overlapping windows of the split.
  int64_t windows() const { return (split_.size - 1) / seq_len_; }
  int64_t seq_len() const { return seq_len_; }
  // Rows take windows first, first + stride, ...; rows past `end` get targets -1 (ignored).
  void fixed(int64_t first, int64_t stride, int64_t end, const Tensor& tokens,
             const Tensor& targets) const;

 private:
  void copy_window(int64_t offset, int64_t row, const Tensor& tokens, const Tensor& targets) const;
  const TokenSplit& split_;
  int64_t seq_len_;
  mutable std::vector<int32_t> window_;  // seq_len + 1 tokens read at once
};

// Unigram perplexity of `eval` under add-one-smoothed token frequencies of `train`.
double unigram_perplexity(const TokenSplit& train, const TokenSplit& eval);

}  // namespace mt
