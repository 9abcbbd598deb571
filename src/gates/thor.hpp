// THOR stochastic experts (Zuo et al. 2022; ALGORITHMS.md 1): no router and no gate parameters;
// every token goes to a uniformly drawn expert with weight 1, no capacity, no auxiliary loss.
// Training draws per layer and forward pass: one expert for the whole batch (granularity batch,
// as the reference code), or one per sequence or per token; the draw is keyed by the step's
// routing key, the layer and the pass, so every rank agrees. Evaluation fixes one random expert
// per sequence (eval granularity sequence) or draws per token.
#pragma once
#include <string>

#include "gates/gate.hpp"

namespace mt {

class ThorGate : public Gate {
 public:
  ThorGate(int num_experts, std::string granularity, std::string eval_granularity);
  Routing route(Arena& arena, const Tensor& x, const RouteContext& ctx) const override;
  void backward(Arena&, const Routing&, const Tensor&, const Tensor&) const override {}

 private:
  int num_experts_;
  std::string granularity_, eval_granularity_;
};

}  // namespace mt
