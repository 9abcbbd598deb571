// Global-norm clipping.
#include "optim/clip.hpp"

#include <cmath>

#include "tensor/ops.hpp"

namespace mt {

double grad_norm(ParamRegistry& reg) {
  const Tensor all{reg.grads(), {reg.total_elements()}, DType::F32, Device::CPU};
  return std::sqrt(ops::sum_squares(all));
}

double clip_grad_norm(ParamRegistry& reg, double max_norm) {
  const double norm = grad_norm(reg);
  if (max_norm > 0 && norm > max_norm) {
    ops::scale(Tensor{reg.grads(), {reg.total_elements()}, DType::F32, Device::CPU},
               float(max_norm / (norm + 1e-6)));
  }
  return norm;
}

}  // namespace mt
