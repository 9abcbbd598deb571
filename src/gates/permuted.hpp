// Any gate with COMET+'s permutation local search (Ibrahim et al. 2023; mazumder-lab/COMET
// model/permutations/learn_permutations.py, one permutation shared by the whole gate): the inner
// gate's combine weights over the experts, w [E] per token, go through a permutation P [E, E],
// w'_l = sum_e w_e P_el, rescaled to w's sum (the authors renormalise to 1; their gates' weights
// sum to 1, and the rescale keeps a top-k router's weight scale and gradient).
//   Learning, training steps t < perm.steps: P = Sinkhorn((Lambda + nu Gumbel) / tau, n) with
//   tau = 10^(-3 - 4 t / T) and n = int(20 + 130 t / T) (gates/permutation.hpp), Lambda [E, E]
//   learned through the unrolled iterations; every expert with w'_l > 0 runs. The gate's loss
//   adds perm.entropy * (H(P) + H(P / row sums)), H(X) = sum -X log(X + 1e-6). Each such step
//   stores P in a buffer (a parameter whose gradient stays zero, so AdamW never moves it, and
//   which checkpoints keep).
//   Afterwards and at evaluation: the hard permutation of the Hungarian assignment of the stored
//   P (not of Lambda), identical on every rank: expert e's tokens go to expert col(e).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "gates/gate.hpp"
#include "gates/gate_keys.hpp"
#include "tensor/params.hpp"

namespace mt {

class PermutedGate : public Gate {
 public:
  PermutedGate(std::unique_ptr<Gate> inner, ParamRegistry& reg, const std::string& prefix,
               int num_experts, const GateKeys& keys);
  // perm.steps (0: no permutation), perm.entropy and perm.noise
  static const std::vector<GateKey>& keys();
  static bool enabled(const GateKeys& keys);
  Routing route(Arena& arena, const Tensor& x, const RouteContext& ctx) const override;
  void backward(Arena& arena, const Routing& r, const Tensor& dweight,
                const Tensor& dx) const override;

 private:
  bool learning(const RouteContext& ctx) const { return ctx.training && ctx.step < steps_; }
  // Lambda (+ nu Gumbel) on the host, for the step of ctx.
  std::vector<float> logits(Arena& arena, const RouteContext& ctx) const;
  std::unique_ptr<Gate> inner_;
  const ParamRegistry& reg_;
  int num_experts_;
  int64_t steps_;
  double entropy_weight_, noise_;
  int lambda_, stored_;  // Lambda and the stored soft P, each [E * E] (no weight decay)
};

}  // namespace mt
