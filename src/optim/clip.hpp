// Global gradient-norm clipping over every parameter of the registry.
#pragma once
#include "tensor/params.hpp"

namespace mt {

double grad_norm(ParamRegistry& reg);
// Scales all gradients so that their global L2 norm is at most max_norm (0 disables clipping).
// Returns the norm before clipping.
double clip_grad_norm(ParamRegistry& reg, double max_norm);

}  // namespace mt
