// THOR's random expert draws.
#include "gates/thor.hpp"

#include "tensor/error.hpp"
#include "tensor/rng.hpp"

namespace mt {

ThorGate::ThorGate(int num_experts, std::string granularity, std::string eval_granularity)
    : num_experts_(num_experts),
      granularity_(std::move(granularity)),
      eval_granularity_(std::move(eval_granularity)) {}

Routing ThorGate::route(Arena& arena, const Tensor& x, const RouteContext& ctx) const {
  const int64_t T = x.size(0);
  const std::string& g = ctx.training ? granularity_ : eval_granularity_;
  // Training draws change with every step and pass; evaluation draws depend on the seed only.
  const Rng rng(ctx.seed, ctx.training ? stream_id({name_hash("thor"), ctx.key, uint64_t(ctx.layer),
                                                    uint64_t(ctx.pass)})
                                       : stream_id({name_hash("thor-eval"), uint64_t(ctx.layer)}));
  Routing r = one_choice(arena, T, num_experts_, ctx);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t token = ctx.first_token + t;  // global index: the same draw on any world size
    const uint64_t index = g == "batch"      ? 0
                           : g == "sequence" ? uint64_t(token / ctx.seq_len)
                                             : uint64_t(token);
    r.expert.i32()[t] = int32_t(rng.below(index, num_experts_));
  }
  count_load(r);
  return r;
}

}  // namespace mt
