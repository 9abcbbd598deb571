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
  Routing r;
  r.ctx = ctx;
  r.expert = arena.alloc({T, 1}, DType::I32);
  r.weight = arena.alloc({T, 1});
  r.load.assign(num_experts_, 0);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t token = ctx.first_token + t;  // global index: the same draw on any world size
    const uint64_t index = g == "batch"      ? 0
                           : g == "sequence" ? uint64_t(token / ctx.seq_len)
                                             : uint64_t(token);
    const int32_t e = int32_t(rng.below(index, num_experts_));
    r.expert.i32()[t] = e;
    r.weight.f32()[t] = 1.0f;
    ++r.load[e];
  }
  return r;
}

}  // namespace mt
