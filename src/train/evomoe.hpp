// EvoMoE's expert-diversify spawn (docs/methods.md §3.1): every expert of every MoE layer becomes
// theta_0 * M_e, where theta_0 is expert 0 (the one expert trained so far) and M_e a random binary
// mask keeping each weight with probability 1 - mask_ratio, no rescale. Masks are keyed by
// (seed, parameter, global expert id), so any world layout spawns the same experts. The Adam
// moments of the experts and the gate start again from zero.
#pragma once
#include "comm/topology.hpp"
#include "optim/adamw.hpp"

namespace mt {

void spawn_experts(ParamRegistry& reg, AdamW& opt, const Groups& groups, uint64_t seed,
                   double mask_ratio);

}  // namespace mt
