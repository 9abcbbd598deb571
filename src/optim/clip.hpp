// Global gradient norm and clipping over every parameter of the registry. With an EP group, the
// expert shards' squares are summed over it (each rank holds a different part of the experts);
// replicated gradients are identical on every rank after synchronisation and counted once.
#pragma once
#include "comm/process_group.hpp"
#include "tensor/params.hpp"

namespace mt {

double grad_norm(ParamRegistry& reg, ProcessGroup* ep = nullptr);
// Scales all gradients so that their global L2 norm is at most max_norm (0 disables clipping).
// Returns the norm before clipping.
double clip_grad_norm(ParamRegistry& reg, double max_norm, ProcessGroup* ep = nullptr);

}  // namespace mt
