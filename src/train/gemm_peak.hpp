// The GEMM rate the progress line's MFU is measured against.
#pragma once
#include <cstdint>

#include "model/gpt.hpp"
#include "tensor/arena.hpp"

namespace mt {

// FLOP/s of this rank's matmul, the fastest of the model's large products on `tokens` tokens (the
// FFN's two layers, [tokens, d] x [d, ff] and [tokens, ff] x [ff, d], and the head, [tokens, d] x
// [d, V]), each the best of 5 after one warm-up, through the entry point training takes (the
// device, the precision, train.cpu_gemm). Leaves the arena reset.
double gemm_peak_flops(Arena& arena, const GptConfig& c, int64_t tokens);

}  // namespace mt
