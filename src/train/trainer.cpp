// Trainer implementation: one loop, every step following the scheduler's plan.
#include "train/trainer.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "io/checkpoint.hpp"
#include "io/results.hpp"
#include "io/tokens.hpp"
#include "model/loss.hpp"
#include "optim/clip.hpp"
#include "tensor/error.hpp"
#include "train/evaluate.hpp"
#include "train/progress.hpp"
#include "train/scheduler.hpp"

namespace mt {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

TrainResult train(const Config& cfg, bool quiet) {
  auto say = [&](const std::string& s) {
    if (!quiet) fmt::print("{}\n", s), std::fflush(stdout);
  };
  const TokenSplit train_split = read_tokens(cfg.data_dir + "/train.h5");
  const TokenSplit valid_split = read_tokens(cfg.data_dir + "/valid.h5");
  MT_CHECK(train_split.vocab == valid_split.vocab, "{}: vocabulary {} differs from {}'s {}",
           valid_split.path, valid_split.vocab, train_split.path, train_split.vocab);

  GptConfig mc = cfg.model;
  mc.vocab = train_split.vocab;
  ParamRegistry reg;
  const Gpt model(mc, reg);
  reg.allocate();
  reg.initialize(cfg.seed);
  AdamW opt(reg, cfg.adamw);
  const Scheduler scheduler(cfg);
  const Batches train_batches(train_split, mc.seq_len), valid_batches(valid_split, mc.seq_len);
  ResultsFile results(cfg.run_dir() + "/results.h5", cfg.ini, "world_size=1");

  TrainResult r;
  r.parameters = reg.total_elements();
  r.unigram_ppl = unigram_perplexity(train_split, valid_split);
  const int64_t tokens_per_step = cfg.batch_size * mc.seq_len;
  say(fmt::format(
      "moetrain: {} parameters | {} train / {} valid tokens | vocab {} | {} tokens/step",
      r.parameters, train_split.tokens.size(), valid_split.tokens.size(), mc.vocab,
      tokens_per_step));
  say(fmt::format("moetrain: unigram perplexity of the validation split: {:.1f}", r.unigram_ppl));

  Arena arena;
  Gpt::Activations acts;
  const auto start = Clock::now();
  double train_seconds = 0;
  size_t allocations_after_first = 0;
  for (int64_t step = 0; step < cfg.steps; ++step) {
    const StepPlan plan = scheduler.plan(step);
    const auto t0 = Clock::now();
    arena.reset();  // merges the blocks the previous step grew into one
    const size_t allocs_before = arena.system_allocations();
    Tensor tokens = arena.alloc({cfg.batch_size, mc.seq_len}, DType::I32);
    Tensor targets = arena.alloc({cfg.batch_size, mc.seq_len}, DType::I32);
    train_batches.random(cfg.seed, step, 0, tokens, targets);
    reg.zero_grads();
    Tensor logits = model.forward(arena, tokens, acts);
    const LossValue loss = lm_loss(arena, logits, targets);
    MT_CHECK(std::isfinite(loss.mean()),
             "training diverged: loss is {} at step {} (lower train.lr?)", loss.mean(), step);
    model.backward(arena, logits, acts);
    const double norm = clip_grad_norm(reg, cfg.grad_clip);
    opt.step(float(plan.lr));
    const double step_s = seconds_since(t0);
    if (step > 0) allocations_after_first += arena.system_allocations() - allocs_before;
    train_seconds += step_s;

    if (step == 0) r.first_loss = loss.mean();
    r.final_loss = loss.mean();
    results.record("/train/step", double(step));
    results.record("/train/loss", loss.mean());
    results.record("/train/ce", loss.mean());
    results.record("/train/aux", 0.0);
    results.record("/train/consistency", 0.0);
    results.record("/train/lr", plan.lr);
    results.record("/train/grad_norm", norm);
    results.record("/train/tokens_per_s", tokens_per_step / step_s);
    results.record("/train/step_s", step_s);
    results.record("/train/a2a_s", 0.0);
    results.record("/train/a2a_bytes", 0.0);

    if (plan.log) {
      const double rate = tokens_per_step * (step + 1) / train_seconds;
      say(progress_line({step + 1, cfg.steps, loss.mean(), plan.lr, norm, rate,
                         seconds_since(start) / (step + 1) * (cfg.steps - step - 1)}));
    }
    if (plan.eval) {
      const LossValue v = evaluate(model, arena, valid_batches, cfg.batch_size, cfg.eval_batches);
      r.valid_loss = v.mean();
      r.valid_ppl = std::exp(v.mean());
      results.record("/valid/step", double(step));
      results.record("/valid/loss", r.valid_loss);
      results.record("/valid/ppl", r.valid_ppl);
      say(fmt::format("valid | step {} | loss {:.4f} | ppl {:.2f} | {} tokens", step + 1,
                      r.valid_loss, r.valid_ppl, v.count));
    }
    if (plan.log || plan.eval) results.flush();
  }
  r.steps = cfg.steps;
  r.tokens_per_s = tokens_per_step * cfg.steps / train_seconds;
  r.arena_allocations_after_first_step = allocations_after_first;
  const std::string ckpt = cfg.run_dir() + "/checkpoint.h5";
  save_checkpoint(ckpt, reg, opt, cfg.steps, cfg.ini);
  say(fmt::format("moetrain: done in {} | {:.0f} tok/s | valid ppl {:.2f} (unigram {:.1f}) | {}",
                  format_duration(seconds_since(start)), r.tokens_per_s, r.valid_ppl, r.unigram_ppl,
                  ckpt));
  say(fmt::format("moetrain: results in {}", results.path()));
  return r;
}

}  // namespace mt
