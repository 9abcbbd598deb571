// THOR stochastic experts (Zuo et al. 2022; docs/methods.md §1): no router and no gate parameters;
// every token goes to a uniformly drawn expert with weight 1, no capacity, no auxiliary loss.
// Training draws per layer and forward pass: one expert for the whole (micro-)batch
// (granularity batch, as the reference code), or one per sequence or per token; the draw is keyed
// by the step's routing key, the layer and the pass, so every rank agrees. Evaluation draws per
// layer and evaluation batch, as the reference's --inference-level: one expert per position
// shared by every sequence of the batch (position, level 1, what its scripts run), one per
// (position, sequence) (token, level 0), or one per sequence.
#pragma once
#include <string>
#include <vector>

#include "gates/gate.hpp"
#include "gates/gate_keys.hpp"

namespace mt {

enum class ThorDraw { Batch, Sequence, Token, Position };

class ThorGate : public Gate {
 public:
  // The draws from thor.granularity and thor.eval_granularity.
  ThorGate(int num_experts, const GateKeys& keys);
  static const std::vector<GateKey>& keys();
  Routing route(Arena& arena, const Tensor& x, const RouteContext& ctx) const override;
  void backward(Arena&, const Routing&, const Tensor&, const Tensor&) const override {}

 private:
  int num_experts_;
  ThorDraw train_, eval_;
};

}  // namespace mt
