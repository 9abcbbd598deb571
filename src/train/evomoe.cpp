// EvoMoE spawn: broadcast expert 0 inside each EP group, then mask a copy for every local expert.
#include "train/evomoe.hpp"

#include <algorithm>

#include "tensor/rng.hpp"

namespace mt {

void spawn_experts(ParamRegistry& reg, AdamW& opt, const Groups& groups, uint64_t seed,
                   double mask_ratio) {
  std::vector<float> parent, staging;
  float* values = host_floats(reg.value_buffer(), staging);
  for (size_t i = 0; i < reg.size(); ++i) {
    const ParamInfo& p = reg.info(int(i));
    const bool gate = p.name.ends_with("/moe/gate/w");
    if (p.kind != ParamKind::Expert && !gate) continue;
    zero_bytes(opt.m().view(p.shape, p.offset));
    zero_bytes(opt.v().view(p.shape, p.offset));
    if (gate) continue;
    const int64_t n = p.row_elements();
    float* v = values + p.offset;
    parent.assign(v, v + n);  // meaningful on the rank holding expert 0 (row_offset 0)
    groups.ep->broadcast(parent.data(), int64_t(sizeof(float)) * n, 0);
    for (int64_t e = 0; e < p.shape[0]; ++e) {
      const uint64_t id = uint64_t(p.row_offset + e);
      const Rng mask(seed, stream_id({name_hash("evo-mask"), name_hash(p.name.c_str()), id}));
      for (int64_t k = 0; k < n; ++k)
        v[e * n + k] = mask.uniform(uint64_t(k)) >= mask_ratio ? parent[k] : 0.0f;
    }
  }
  store_host_floats(reg.value_buffer(), staging);
}

}  // namespace mt
