// AdamW (Loshchilov & Hutter): bias-corrected moments, decoupled weight decay on the parameters
// the registry marks for decay. Moments are flat arrays aligned with the registry's values.
#pragma once
#include "tensor/params.hpp"

namespace mt {

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};

class AdamW {
 public:
  AdamW(ParamRegistry& reg, const AdamWConfig& c);
  // One update of every parameter from its gradient times grad_scale (clip_scale's factor) at
  // learning rate lr.
  void step(float lr, float grad_scale = 1);
  // A frozen parameter keeps its value and moments at every step, as a parameter without a
  // gradient does in torch's optimizers (JEI-DNN's warm-up freezes an exit's head).
  void freeze(int param, bool frozen) { frozen_.at(size_t(param)) = frozen; }
  int64_t steps() const { return step_; }
  void set_steps(int64_t s) { step_ = s; }  // when resuming
  // The moments, flat like the registry's values and on its device.
  const Buffer& m() const { return m_; }
  const Buffer& v() const { return v_; }

 private:
  ParamRegistry& reg_;
  AdamWConfig cfg_;
  Buffer m_, v_;
  std::vector<uint8_t> frozen_;  // per parameter
  int64_t step_ = 0;
};

}  // namespace mt
