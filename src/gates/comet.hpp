// COMET (Ibrahim et al. 2023, arXiv 2306.04268), per token, as the authors' TensorFlow gate
// (mazumder-lab/COMET model/gates/comet.py): k binary trees over the E experts, in heap order
// (internal nodes 0..E-2, node i's children 2i+1 and 2i+2, leaves E-1..2E-2; a leaf's expert is
// its left-to-right position). Internal node i routes q_j = S(x W_i + b_i)_j of tree j's
// probability left and 1 - q_j right (S: gates/smooth_step.hpp), so leaf l of tree j holds the
// path probability pi_jl; its logit is s_jl = x V_l + c_l + log(pi_jl + 1e-8), or -inf where
// pi_jl = 0 (the authors' float32.min). One softmax over all k E entries gives omega [k, E];
// expert e's combine weight is w_e = sum_j omega_je (already summing to 1: the authors'
// renormalisation over experts only matters after a permutation). Every expert with w_e > 0
// runs, dropless. In training the gate's loss is lambda * sum_{j,l} -pi_jl log(pi_jl + 1e-6) per
// token, averaged over the global batch's tokens.
#pragma once
#include <string>
#include <vector>

#include "gates/gate.hpp"
#include "gates/gate_keys.hpp"
#include "tensor/params.hpp"

namespace mt {

struct CometConfig {
  int num_experts = 8;
  int k = 2;                    // trees
  double gamma = 1.0;           // smooth-step width
  double entropy_weight = 0.1;  // lambda
};

class CometGate : public Gate {
 public:
  CometGate(ParamRegistry& reg, const std::string& prefix, int64_t d, const CometConfig& c);
  // comet.k, comet.gamma and comet.entropy
  static const std::vector<GateKey>& keys();
  static CometConfig config(int num_experts, const GateKeys& keys);
  Routing route(Arena& arena, const Tensor& x, const RouteContext& ctx) const override;
  void backward(Arena& arena, const Routing& r, const Tensor& dweight,
                const Tensor& dx) const override;

 private:
  // Every tree's path probabilities pi [k, 2E - 1] (node-major: pi[node * k + j]) from the
  // internal nodes' pre-activations z [E - 1, k].
  void paths(const float* z, float* pi) const;
  const ParamRegistry& reg_;
  CometConfig cfg_;
  std::vector<int> expert_of_;  // leaf node -> expert (its left-to-right position)
  int wz_, bz_, wa_, ba_;       // the internal nodes' and the leaves' linear maps
};

}  // namespace mt
