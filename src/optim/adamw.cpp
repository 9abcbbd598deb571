// AdamW update over the parameter registry.
#include "optim/adamw.hpp"

#include "tensor/ops.hpp"

namespace mt {

AdamW::AdamW(ParamRegistry& reg, const AdamWConfig& c)
    : reg_(reg), cfg_(c), m_(reg.total_elements(), 0.0f), v_(reg.total_elements(), 0.0f) {}

void AdamW::step(float lr) {
  ++step_;
  for (const auto& p : reg_.all()) {
    const ops::AdamWStep s{
        lr, cfg_.beta1, cfg_.beta2, cfg_.eps, p.decay ? cfg_.weight_decay : 0.0f, step_};
    auto view = [&](float* base) {
      return Tensor{base + p.offset, p.shape, DType::F32, Device::CPU};
    };
    ops::adamw_update(view(reg_.values()), view(reg_.grads()), view(m_.data()), view(v_.data()), s);
  }
}

}  // namespace mt
