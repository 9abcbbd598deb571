// THOR's random expert draws.
#include "gates/thor.hpp"

#include "tensor/error.hpp"
#include "tensor/rng.hpp"

namespace mt {

namespace {
ThorDraw parse_thor_draw(const std::string& s, const std::string& key) {
  if (s == "batch") return ThorDraw::Batch;
  if (s == "sequence") return ThorDraw::Sequence;
  if (s == "token") return ThorDraw::Token;
  if (s == "position") return ThorDraw::Position;
  fail("config: {} = '{}' (batch, sequence, token or position)", key, s);
}

const GateKey kTrain{.name = "thor.granularity",
                     .value = "batch",
                     .help = "THOR training draw: one expert per batch | sequence | token",
                     .words = {"batch", "sequence", "token"}};
const GateKey kEval{
    .name = "thor.eval_granularity",
    .value = "position",
    .help =
        "THOR evaluation draw per layer and batch: position (one expert per position shared "
        "by the batch; the reference's --inference-level 1) | token (per position and "
        "sequence; level 0) | sequence",
    .words = {"position", "token", "sequence"}};
}  // namespace

const std::vector<GateKey>& ThorGate::keys() {
  static const std::vector<GateKey> k = {kTrain, kEval};
  return k;
}

ThorGate::ThorGate(int num_experts, const GateKeys& keys)
    : num_experts_(num_experts),
      train_(parse_thor_draw(keys.word(kTrain), kTrain.name)),
      eval_(parse_thor_draw(keys.word(kEval), kEval.name)) {}

Routing ThorGate::route(Arena& arena, const Tensor& x, const RouteContext& ctx) const {
  const int64_t T = x.size(0);
  const ThorDraw draw = ctx.training ? train_ : eval_;
  // Training draws change with every step, micro-batch and pass; evaluation draws with every
  // evaluation batch (ctx.step there).
  const Rng rng(ctx.seed, ctx.training ? stream_id({name_hash("thor"), ctx.key, uint64_t(ctx.layer),
                                                    uint64_t(ctx.pass), uint64_t(ctx.micro)})
                                       : stream_id({name_hash("thor-eval"), uint64_t(ctx.layer),
                                                    uint64_t(ctx.step)}));
  Routing r = one_choice(arena, T, num_experts_, ctx);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t token = ctx.first_token + t;  // global index: the same draw on any world size
    const uint64_t index = draw == ThorDraw::Batch      ? 0
                           : draw == ThorDraw::Sequence ? uint64_t(token / ctx.seq_len)
                           : draw == ThorDraw::Position ? uint64_t(token % ctx.seq_len)
                                                        : uint64_t(token);
    r.expert.i32()[t] = int32_t(rng.below(index, num_experts_));
  }
  count_load(r);
  return r;
}

}  // namespace mt
