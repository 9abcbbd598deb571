// EvoMoE's gate (Nie et al.; docs/methods.md §3, as in the authors' code,
// codecaution/EvoMoE fairseq/modules/moe/topkgate.py) through the phases the scheduler decides
// (RouteContext::phase):
//   0 expert-diversify: every token to global expert 0 with weight 1 (the layer is one dense FFN;
//     the tokens travel to expert 0's rank), and the gate gets no gradient;
//   1 gate-sparsify: the Dense-to-Sparse gate g = softmax((h + G) / tau), G Gumbel noise per
//     (global token, expert, step, layer); experts with g > threshold are active (the argmax of g
//     if none);
//   2 top-1: the argmax of g, a Gumbel-max sample of softmax(h).
// The combine weight of an active expert is the clean softmax(h) there (or g with
// gumbel_weights), not renormalised. Balance loss per capacity group, as the code's
// E * sum_e me_e * ce_e: me_e the mean over tokens of the masked weights, ce_e the fraction of
// tokens that activate e. Evaluation (phases 1 and 2): top-1 argmax of softmax(h), no noise.
#pragma once
#include <string>

#include "gates/gate.hpp"
#include "tensor/params.hpp"

namespace mt {

struct EvoGateConfig {
  int num_experts = 8;
  double threshold = 0.001;
  double aux_weight = 0.01;
  bool gumbel_weights = false;  // combine with the Gumbel-softmax value g instead of softmax(h)
};

class EvoGate : public Gate {
 public:
  EvoGate(ParamRegistry& reg, const std::string& prefix, int64_t d, const EvoGateConfig& c);
  Routing route(Arena& arena, const Tensor& x, const RouteContext& ctx) const override;
  void backward(Arena& arena, const Routing& r, const Tensor& dweight,
                const Tensor& dx) const override;

 private:
  const ParamRegistry& reg_;
  int w_;  // the router W_g [d, E]
  EvoGateConfig cfg_;
};

}  // namespace mt
