// Text generation from a trained model (moetrain generate): one forward per new token over the
// last seq_len ids, on every rank of any layout; rank 0 picks each token and broadcasts it.
#pragma once
#include <cstdint>
#include <vector>

#include "model/gpt.hpp"
#include "train/runtime.hpp"

namespace mt {

struct GenerateConfig {
  int64_t tokens = 50;     // new tokens
  double temperature = 0;  // 0: greedy
  int64_t top_k = 0;       // sample among the k most likely (0: all of them)
  uint64_t seed = 1;       // the draws: a pure function of (seed, position)
};

// The next id from logits z [V]: greedy (temperature 0: the largest, ties to the lowest id), or
// the first id whose cumulative probability under softmax(z / temperature) over the top_k
// largest (ties to the lowest id) exceeds u in [0, 1).
int32_t pick_token(const float* z, int64_t V, double temperature, int64_t top_k, float u);

// The g.tokens ids that follow `prompt` (at least one id), and the log-probability of each under
// the model (softmax of its logits, whatever the temperature). base: the evaluation pass settings.
struct Generated {
  std::vector<int32_t> ids;
  std::vector<double> logprobs;
};
Generated generate(const Gpt& model, const Runtime& rt, const PassContext& base,
                   const std::vector<int32_t>& prompt, const GenerateConfig& g);

}  // namespace mt
