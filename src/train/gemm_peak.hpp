// The GEMM rate the progress line's MFU is measured against.
#pragma once
#include <cstdint>

#include "model/gpt.hpp"
#include "tensor/arena.hpp"

namespace mt {

// FLOP/s of this rank's matmul at the model's widest product, the FFN's first layer on `tokens`
// tokens ([tokens, d] x [d, ff]), through the entry point training takes (the device, the
// precision, train.cpu_gemm): the best of 5 after one warm-up. Leaves the arena reset.
double gemm_peak_flops(Arena& arena, const GptConfig& c, int64_t tokens);

}  // namespace mt
