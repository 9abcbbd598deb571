// Softmax top-k router: Switch (k = 1, weight p[e1]) and GShard (k = 2, weights renormalised over
// the two, the second kept with probability min(1, 2 g2)). Capacity per group with token
// dropping, or dropless; Switch load-balancing loss and router z-loss (docs/methods.md §5.1, §5.2).
#pragma once
#include <string>

#include "gates/gate.hpp"
#include "tensor/params.hpp"

namespace mt {

struct TopKConfig {
  int k = 1;
  int num_experts = 8;
  double capacity_factor = 1.25, eval_capacity_factor = 2.0;
  bool dropless = false;
  double aux_weight = 0.01, z_weight = 0.001;
};

class TopKGate : public Gate {
 public:
  TopKGate(ParamRegistry& reg, const std::string& prefix, int64_t d, const TopKConfig& c);
  Routing route(Arena& arena, const Tensor& x, const RouteContext& ctx) const override;
  Routing route_local(Arena& arena, const Tensor& x, const RouteContext& ctx, int first, int count,
                      bool gate_weight) const override;
  void backward(Arena& arena, const Routing& r, const Tensor& dweight,
                const Tensor& dx) const override;
  int weight_index() const { return w_; }

 private:
  const ParamRegistry& reg_;
  int w_;  // [d, E]
  TopKConfig cfg_;
  // r.probs = softmax(x W) [T, E] and r.lse [T], each row's log-sum-exp, on the host.
  void softmax(Arena& arena, const Tensor& x, Routing& r) const;
};

}  // namespace mt
