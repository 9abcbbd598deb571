// FLOPs per token of the model's matrix products (the GEMMs; LayerNorm, softmax and the
// element-wise ops are left out), as Megatron-LM counts them for MFU: forward 8d^2 + 4 c d per
// block for attention (c: the positions a query reads), 4 d ff for a dense FFN, 2 d E for a router
// plus 4 d ff per expert a token reaches, and 2 d V for the head; training is three times the
// forward (the backward computes the input's and the weight's gradient of every product).
#pragma once
#include "model/gpt.hpp"

namespace mt {

// Block m's forward FLOPs per token. choices: experts per token (a MoE block); context: the
// positions a query attends to (seq_len in training, where every score of the T x T matrix is
// computed; (T + 1) / 2 on average when decoding with a causal cache).
double block_flops(const GptConfig& c, int m, double choices, double context);
double head_flops(const GptConfig& c);  // the LM head's forward FLOPs per token

// One training pass's FLOPs per token (forward and backward, every block and the head).
double train_flops_per_token(const GptConfig& c, double choices);

}  // namespace mt
