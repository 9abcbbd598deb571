// DSelect-k (Hazimeh et al. 2021), per token, as the authors' code (google-research dselect_k_moe):
// k selectors of m = ceil(log2 E) smooth-step bits each, z = x Wz + bz [k, m], s = S(z), and
// r_j[e] = prod_b (bit b of e ? s_jb : 1 - s_jb), most significant bit first; selector weights
// alpha = softmax(x Wa + ba) [k]; expert e's combine weight w_e = sum_j alpha_j r_j[e]. Every
// expert with w_e > 0 runs (the smooth step's exact 0 and 1 make the routing sparse as it
// trains), dropless. In training the gate's loss is, per token and averaged over the global
// batch's tokens, lambda * -sum_{j,e} r log(r + 1e-6) and, when E is not a power of two,
// sum_j 1 / (sum_{e<E} r_j[e] + 1e-6) (the codes >= E hold the rest of a selector's mass).
// S is the smooth step of gates/smooth_step.hpp.
#pragma once
#include <string>
#include <vector>

#include "gates/gate.hpp"
#include "gates/gate_keys.hpp"
#include "tensor/params.hpp"

namespace mt {

struct DSelectKConfig {
  int num_experts = 8;
  int k = 2;                    // selectors
  double gamma = 1.0;           // smooth-step width
  double entropy_weight = 0.1;  // lambda
};

class DSelectKGate : public Gate {
 public:
  DSelectKGate(ParamRegistry& reg, const std::string& prefix, int64_t d, const DSelectKConfig& c);
  // dselect.k, dselect.gamma and dselect.entropy
  static const std::vector<GateKey>& keys();
  static DSelectKConfig config(int num_experts, const GateKeys& keys);
  Routing route(Arena& arena, const Tensor& x, const RouteContext& ctx) const override;
  void backward(Arena& arena, const Routing& r, const Tensor& dweight,
                const Tensor& dx) const override;

 private:
  const ParamRegistry& reg_;
  DSelectKConfig cfg_;
  int bits_;               // m
  int wz_, bz_, wa_, ba_;  // the selectors' and their weights' linear maps
};

}  // namespace mt
