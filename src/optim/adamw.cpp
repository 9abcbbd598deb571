// AdamW update over the parameter registry.
#include "optim/adamw.hpp"

#include "tensor/ops.hpp"

namespace mt {

AdamW::AdamW(ParamRegistry& reg, const AdamWConfig& c)
    : reg_(reg),
      cfg_(c),
      m_(reg.device(), reg.total_elements()),
      v_(reg.device(), reg.total_elements()),
      frozen_(reg.size(), 0) {}

void AdamW::step(float lr, float grad_scale) {
  ++step_;
  for (size_t i = 0; i < reg_.size(); ++i) {
    if (frozen_[i]) continue;
    const ParamInfo& p = reg_.info(int(i));
    const ops::AdamWStep s{
        lr,    cfg_.beta1, cfg_.beta2, cfg_.eps, p.decay ? cfg_.weight_decay : 0.0f,
        step_, grad_scale};
    ops::adamw_update(reg_.value(int(i)), reg_.grad(int(i)), m_.view(p.shape, p.offset),
                      v_.view(p.shape, p.offset), s);
  }
}

}  // namespace mt
