// Global gradient norm and the clipping factor.
#include "optim/clip.hpp"

#include <cmath>

#include "tensor/ops.hpp"

namespace mt {

namespace {
double squares(ParamRegistry& reg, ParamKind kind) {
  const auto [begin, end] = reg.range(kind);
  return ops::sum_squares(Tensor{reg.grads() + begin, {end - begin}, DType::F32, reg.device()});
}
}  // namespace

double grad_norm(ParamRegistry& reg, ProcessGroup* ep) {
  double expert = squares(reg, ParamKind::Expert);
  if (ep) ep->all_reduce_sum(&expert, 1);
  return std::sqrt(squares(reg, ParamKind::Replicated) + expert);
}

float clip_scale(double norm, double max_norm) {
  return max_norm > 0 && norm > max_norm ? float(max_norm / (norm + 1e-6)) : 1.0f;
}

}  // namespace mt
