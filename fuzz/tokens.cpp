// Fuzz target: the token-file reader. The input is the file `moetrain train` reads as a split;
// what it accepts must also cut into windows (Batches) without reading outside the tokens.
#include "io/tokens.hpp"
#include "fuzz/scratch_file.hpp"

#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = mt::fuzz::write_scratch("tokens.h5", data, size);
  mt::fuzz::expect_clear_errors([&] {
    const mt::TokenSplit split = mt::read_tokens(path);
    const mt::Batches batches(split, 4);
    std::vector<int32_t> x(8), y(8);
    const mt::Tensor tokens{x.data(), mt::Shape{2, 4}, mt::DType::I32};
    const mt::Tensor targets{y.data(), mt::Shape{2, 4}, mt::DType::I32};
    batches.random(1, 0, 0, tokens, targets);
    batches.fixed(0, 1, batches.windows(), tokens, targets);
  });
  return 0;
}
