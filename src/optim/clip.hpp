// Global gradient norm and its clipping factor over every parameter of the registry. With an EP
// group, the expert shards' squares are summed over it (each rank holds a different part of the
// experts); replicated gradients are identical on every rank after synchronisation and counted
// once.
#pragma once
#include "comm/process_group.hpp"
#include "tensor/params.hpp"

namespace mt {

double grad_norm(ParamRegistry& reg, ProcessGroup* ep = nullptr);
// The factor that brings a global norm down to max_norm (1 below it, or with max_norm 0: off).
// The optimizer applies it as it reads each gradient (AdamW::step), so clipping walks no memory.
float clip_scale(double norm, double max_norm);

}  // namespace mt
