// Evaluation loop.
#include "train/evaluate.hpp"

#include <algorithm>

#include "io/checkpoint.hpp"

namespace mt {

PassContext eval_context(uint64_t seed, const StepPlan& plan) {
  return {.route = {.seed = seed, .phase = plan.phase, .tau = plan.tau}};
}

void for_each_eval_batch(
    Arena& arena, const Batches& batches, int64_t batch_size, int64_t max_batches,
    const Runtime& rt, const PassContext& base, int64_t micro,
    const std::function<void(const Tensor&, const Tensor&, const PassContext&)>& use) {
  const int64_t T = batches.seq_len();
  const int64_t local = micro > 0 ? micro : batch_size / rt.ranks();
  const int64_t chunk = local * rt.ranks();  // windows per forward, over all ranks
  const int64_t all = batches.windows();
  const int64_t used = max_batches > 0 ? std::min(all, max_batches * batch_size) : all;
  const int64_t stride = all / used;
  for (int64_t first = 0; first < used; first += chunk) {
    arena.reset();
    Tensor tokens = arena.host().alloc({local, T}, DType::I32);
    Tensor targets = arena.host().alloc({local, T}, DType::I32);
    // Row r of the batch takes window (first + r) * stride; rows past `used` are ignored.
    const int64_t mine = first + rt.rank() * local;
    batches.fixed(mine * stride, stride, used * stride, tokens, targets);
    PassContext ctx = base;
    ctx.a2a = rt.a2a.get();
    ctx.route.training = false;
    ctx.route.step = first / chunk;  // keys THOR's evaluation draws: a fresh draw per forward
    ctx.global_sequences = chunk;
    ctx.first_sequence = rt.rank() * local;
    use(tokens, targets, ctx);
  }
  arena.reset();
}

void for_each_eval_pass(
    const Gpt& model, Arena& arena, const Batches& batches, int64_t batch_size, int64_t max_batches,
    const Runtime& rt, const PassContext& base, int64_t micro,
    const std::function<void(const Gpt::Activations&, const Tensor&, const Tensor&)>& use) {
  Gpt::Activations acts;
  for_each_eval_batch(arena, batches, batch_size, max_batches, rt, base, micro,
                      [&](const Tensor& tokens, const Tensor& targets, const PassContext& ctx) {
                        use(acts, model.forward(arena, tokens, acts, ctx), targets);
                      });
}

PassContext checkpoint_eval_context(const Config& cfg, const std::string& path) {
  return eval_context(cfg.seed,
                      Scheduler(cfg).plan(std::max<int64_t>(checkpoint_step(path) - 1, 0)));
}

LossValue evaluate(const Gpt& model, Arena& arena, const Batches& batches, int64_t batch_size,
                   int64_t max_batches, const Runtime& rt, const PassContext& base, int64_t micro) {
  double sums[2] = {0, 0};  // loss sum, counted tokens
  for_each_eval_pass(model, arena, batches, batch_size, max_batches, rt, base, micro,
                     [&](const Gpt::Activations&, const Tensor& logits, const Tensor& targets) {
                       const LossValue l = lm_loss(arena, logits, targets);
                       sums[0] += l.sum;
                       sums[1] += double(l.count);
                     });
  rt.groups.world->all_reduce_sum(sums, 2);
  return {sums[0], int64_t(sums[1])};
}

}  // namespace mt
