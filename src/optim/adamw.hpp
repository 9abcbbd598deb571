// AdamW (Loshchilov & Hutter): bias-corrected moments, decoupled weight decay on the parameters
// the registry marks for decay. Moments are flat arrays aligned with the registry's values.
#pragma once
#include <vector>

#include "tensor/params.hpp"

namespace mt {

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};

class AdamW {
 public:
  AdamW(ParamRegistry& reg, const AdamWConfig& c);
  // One update of every parameter from its gradient at learning rate lr.
  void step(float lr);
  int64_t steps() const { return step_; }
  void set_steps(int64_t s) { step_ = s; }  // when resuming
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }

 private:
  ParamRegistry& reg_;
  AdamWConfig cfg_;
  std::vector<float> m_, v_;
  int64_t step_ = 0;
};

}  // namespace mt
