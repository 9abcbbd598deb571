// EvoMoE's gate (Nie et al.; ALGORITHMS.md 3, our defaults) through the phases the scheduler
// decides (RouteContext::phase):
//   0 expert-diversify: every token to expert 0 with weight 1 (the layer is one dense FFN);
//   1 gate-sparsify: the Dense-to-Sparse gate g = softmax((h + G) / tau), G Gumbel noise per
//     (token, expert, step); experts with g > threshold are active (the argmax if none), with
//     weight g (not renormalised); the Switch balance loss with f over active pairs. At
//     evaluation no noise;
//   2 top-1: Switch routing without capacity (the shared router weights W_g [d, E]).
#pragma once
#include <string>

#include "gates/topk.hpp"

namespace mt {

class EvoGate : public Gate {
 public:
  EvoGate(ParamRegistry& reg, const std::string& prefix, int64_t d, int num_experts,
          double threshold, double aux_weight);
  Routing route(Arena& arena, const Tensor& x, const RouteContext& ctx) const override;
  void backward(Arena& arena, const Routing& r, const Tensor& dweight,
                const Tensor& dx) const override;

 private:
  const ParamRegistry& reg_;
  TopKGate top1_;  // phase 2, and the owner of W_g
  int num_experts_;
  double threshold_, aux_weight_;
};

}  // namespace mt
