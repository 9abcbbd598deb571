// FLOPs per token of the model's matrix products.
#include "model/flops.hpp"

namespace mt {

double block_flops(const GptConfig& c, int m, double choices, double context) {
  const double d = double(c.d_model);
  const double ffn = c.is_moe_block(m)
                         ? 2 * d * c.moe.num_experts +
                               choices * 4 * d * double(c.moe.d_ff > 0 ? c.moe.d_ff : c.d_ff)
                         : 4 * d * double(c.d_ff);
  return 8 * d * d + 4 * context * d + ffn;
}

double head_flops(const GptConfig& c) {
  return 2 * double(c.d_model) * double(c.vocab);
}

double train_flops_per_token(const GptConfig& c, double choices) {
  double f = head_flops(c);
  for (int m = 0; m < c.n_layer; ++m) f += block_flops(c, m, choices, double(c.seq_len));
  return 3 * f;
}

}  // namespace mt
