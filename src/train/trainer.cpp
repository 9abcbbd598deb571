// Trainer implementation: one loop, every step following rank 0's plan.
#include "train/trainer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>

#include "comm/hang_watch.hpp"
#include "io/checkpoint.hpp"
#include "io/metrics_log.hpp"
#include "io/results.hpp"
#include "io/tokenizer.hpp"
#include "io/tokens.hpp"
#include "model/flops.hpp"
#include "model/gate_registry.hpp"
#include "model/loss.hpp"
#include "optim/clip.hpp"
#include "optim/grad_sync.hpp"
#include "tensor/error.hpp"
#include "train/evaluate.hpp"
#include "train/evomoe.hpp"
#include "train/fault.hpp"
#include "train/gemm_peak.hpp"
#include "train/preemption.hpp"
#include "train/progress.hpp"
#include "train/run_dir.hpp"
#include "train/runtime.hpp"
#include "train/scheduler.hpp"

namespace mt {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int64_t whole_model_parameters(const ParamRegistry& reg) {
  int64_t n = 0;
  for (const auto& p : reg.all()) n += p.global_rows * p.row_elements();
  return n;
}

// Every series the loop below records (the results file declares them up front).
std::vector<Series> results_series(const GptConfig& mc, const std::vector<int>& moe_blocks) {
  std::vector<Series> s;
  for (const char* name :
       {"step", "tau", "loss", "ce", "aux", "consistency", "lr", "grad_norm", "tokens_per_s",
        "step_s", "a2a_s", "a2a_bytes", "a2a_calls", "gate_drop"})
    s.push_back({fmt::format("/train/{}", name)});
  for (const char* name : {"step", "loss", "ppl"}) s.push_back({fmt::format("/valid/{}", name)});
  for (int i : moe_blocks) {
    s.push_back({fmt::format("/routing/block{}/load", i), mc.moe.num_experts});
    s.push_back({fmt::format("/routing/block{}/dropped", i)});
    s.push_back({fmt::format("/routing/block{}/choices", i)});
    s.push_back({fmt::format("/routing/block{}/experts_per_token", i)});
  }
  if (gate_traits(mc.moe).phases) s.insert(s.end(), {{"/phase/step"}, {"/phase/id"}});
  return s;
}

// INI text as one line per section: "config | [model] seq_len = 128, d_model = 256".
std::vector<std::string> config_lines(const std::string& ini) {
  std::vector<std::string> lines;
  std::istringstream in(ini);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("["))
      lines.push_back("config | " + line + " ");
    else if (!lines.empty())
      lines.back() += (lines.back().ends_with("] ") ? "" : ", ") + line;
  }
  return lines;
}
}  // namespace

TrainResult train(const Config& cfg, Runtime& rt, bool quiet, const std::string& resume) {
  const bool root = rt.root();
  auto say = [&](const std::string& s) {
    if (root && !quiet) fmt::print("{}\n", s), std::fflush(stdout);
  };
  const TokenSplit train_split = read_tokens(cfg.data_dir + "/train.h5");
  const TokenSplit valid_split = read_tokens(cfg.data_dir + "/valid.h5");
  MT_CHECK(train_split.vocab == valid_split.vocab, "{}: vocabulary {} differs from {}'s {}",
           valid_split.path, valid_split.vocab, train_split.path, train_split.vocab);
  const int64_t B = local_batch(cfg, rt), M = micro_batch(cfg, rt);
  const int64_t micro_batches = B / M;

  ParamRegistry reg;
  const Gpt model = build_model(cfg, rt, train_split.vocab, reg);
  const GptConfig& mc = model.config();
  reg.initialize(cfg.seed);
  AdamW opt(reg, cfg.adamw);
  // Resume: parameters, moments and the step; data order, draws and plans are functions of it.
  const std::string& from = resume;
  int64_t first = 0;
  if (!from.empty()) {
    first = checkpoint_step(from);
    MT_CHECK(first < cfg.steps, "{}: written after step {}, and train.steps is {}", from, first,
             cfg.steps);
    load_model(from, reg);
    opt.set_steps(load_optimizer(from, reg, opt));
  }
  const Scheduler scheduler(cfg, first);
  const Batches train_batches(train_split, mc.seq_len), valid_batches(valid_split, mc.seq_len);
  std::vector<int> moe_blocks;
  for (int i = 0; i < mc.n_layer; ++i)
    if (mc.is_moe_block(i)) moe_blocks.push_back(i);
  // Rank 0 writes the results; a failed write (a full disk) stops every rank with its message.
  std::optional<ResultsFile> results;
  std::optional<MetricsLog> metrics;  // the same logged steps and evaluations as JSON lines
  const std::map<std::string, std::string> attrs = run_attributes(rt);
  rt.groups.world->on_root([&] {
    if (from.empty() && cfg.overwrite) remove_earlier_checkpoints(cfg.run_dir());
    results.emplace(cfg.run_dir() + "/results.h5", cfg.ini, attrs, results_series(mc, moe_blocks),
                    first);
    metrics.emplace(cfg.run_dir() + "/metrics.jsonl", first);
  });

  // Every checkpoint carries the tokenizer (generate needs no data directory); rank 0 writes.
  const std::string tokenizer =
      rt.root() ? Tokenizer::model_bytes(cfg.data_dir + "/tokenizer.model") : "";
  TrainResult r;
  r.parameters = whole_model_parameters(reg);
  r.unigram_ppl = unigram_perplexity(train_split, valid_split);
  const int64_t tokens_per_step = cfg.batch_size * mc.seq_len;
  say(fmt::format(
      "moetrain: {} parameters | {} | {} train / {} valid tokens | vocab {} | {} "
      "tokens/step",
      r.parameters, rt.describe(), train_split.size, valid_split.size, mc.vocab, tokens_per_step));
  if (!moe_blocks.empty())
    say(fmt::format("moetrain: {} MoE blocks x {} experts ({} gate, {} per rank), {} all-to-all",
                    moe_blocks.size(), mc.moe.num_experts, mc.moe.gate,
                    mc.moe.num_experts / rt.groups.ep_size(), cfg.a2a));
  say(fmt::format("moetrain: unigram perplexity of the validation split: {:.1f}", r.unigram_ppl));
  say("moetrain: the configuration's keys not at their defaults (results.h5 holds them all):");
  for (const std::string& line : config_lines(cfg.ini_given)) say(line);
  if (!from.empty()) say(fmt::format("moetrain: resuming after step {} from {}", first, from));

  Arena arena(rt.device);
  const GateTraits gate = gate_traits(mc.moe);
  const bool thor = gate.passes == 2;
  // MFU's denominator: the ranks' GEMM rates, measured together (so sharing cores as they train).
  double gemm_peak = gemm_peak_flops(arena, mc, M * mc.seq_len);
  rt.groups.world->all_reduce_sum(&gemm_peak, 1);
  Gpt::Activations acts, acts2;  // acts2: THOR's second forward pass
  const auto start = Clock::now();
  double train_seconds = 0;
  double interval_s = 0;  // the steps since the last progress line
  int64_t interval_steps = 0;
  size_t allocations_after_first = 0;
  // Per MoE block: tokens per expert (first choices), then the dropped (token, choice) pairs and
  // all of them (tokens x the gate's choices).
  const int64_t E = mc.moe.num_experts;
  std::vector<std::vector<double>> block_load(moe_blocks.size(), std::vector<double>(E + 2));
  StepPlan last_plan;
  // /phase records changes; a resumed run continues from the phase of the step before it.
  int recorded_phase = first > 0 ? scheduler.plan(first - 1).phase : -1;
  auto scheduler_state = [&] {
    return std::map<std::string, double>{{"phase", last_plan.phase},
                                         {"phase_step", double(last_plan.phase_step)},
                                         {"lr", last_plan.lr},
                                         {"tau", last_plan.tau}};
  };
  int64_t steps_done = first;
  for (int64_t step = first; step < cfg.steps; ++step) {
    StepPlan plan = root ? scheduler.plan(step, preemption_requested()) : StepPlan{};
    rt.groups.world->broadcast(&plan, sizeof plan, 0);
    hang_watch::set_step(plan.step);
    fault_hang_point(rt.rank(), plan.step + 1);
    const auto t0 = Clock::now();
    arena.reset();  // merges the blocks the previous step grew into one
    const size_t allocs_before = arena.system_allocations();
    rt.a2a->reset_stats();
    reg.zero_grads();
    if (plan.diversify) spawn_experts(reg, opt, rt.groups, cfg.seed, mc.moe.evo_mask_ratio);
    last_plan = plan;
    // sums: cross-entropy (summed over tokens and passes), gate losses, consistency.
    double sums[3] = {0, 0, 0};
    for (auto& l : block_load) std::fill(l.begin(), l.end(), 0.0);
    // Micro-batch m holds global rows [m W M, (m + 1) W M), M of them on each rank; gradients
    // accumulate over the micro-batches, every loss normalised by the whole step's tokens.
    for (int64_t m = 0; m < micro_batches; ++m) {
      if (m > 0) arena.reset();  // one micro-batch's activations at a time
      const int64_t first_row = m * rt.ranks() * M + rt.rank() * M;
      Tensor tokens = arena.host().alloc({M, mc.seq_len}, DType::I32);
      Tensor targets = arena.host().alloc({M, mc.seq_len}, DType::I32);
      train_batches.random(cfg.seed, plan.step, first_row, tokens, targets);
      PassContext ctx{.a2a = rt.a2a.get(),
                      .global_sequences = cfg.batch_size,
                      .first_sequence = first_row,
                      .gate_drop = plan.gate_drop,
                      .route = {.seed = cfg.seed,
                                .step = plan.step,
                                .key = plan.key,
                                .micro = int(m),
                                .phase = plan.phase,
                                .tau = plan.tau}};
      Tensor logits = model.forward(arena, tokens, acts, ctx);
      sums[1] += model.gate_loss(acts);
      Tensor logits2;
      if (thor) {
        ctx.route.pass = 1;
        logits2 = model.forward(arena, tokens, acts2, ctx);
        const ThorLoss t = thor_loss(arena, logits, logits2, targets, mc.moe.thor_alpha,
                                     double(tokens_per_step), float(cfg.label_smoothing));
        sums[0] += t.ce_sum;
        sums[2] += t.cr_sum;
      } else {
        sums[0] +=
            lm_loss(arena, logits, targets, double(tokens_per_step), float(cfg.label_smoothing))
                .sum;
      }
      model.backward(arena, logits, acts);
      if (thor) model.backward(arena, logits2, acts2);
      // Routing statistics (the first pass's): first-choice load per expert, then dropped choices.
      for (size_t b = 0; b < moe_blocks.size(); ++b) {
        const Routing& routing = acts.blocks[moe_blocks[b]].moe.routing;
        for (size_t e = 0; e < routing.load.size(); ++e)
          block_load[b][e] += double(routing.load[e]);
        block_load[b][E] += double(routing.dropped);
        block_load[b][E + 1] += double(routing.k * M * mc.seq_len);
      }
    }
    rt.groups.world->all_reduce_sum(sums, 3);
    const int passes = thor ? 2 : 1;
    const double ce_mean = sums[0] / double(tokens_per_step * passes), aux = sums[1];
    const double consistency = sums[2] / double(tokens_per_step);
    // The objective: THOR's is CE1 + CE2 + alpha CR; the others' CE + gate losses.
    const double loss = ce_mean * passes + aux + mc.moe.thor_alpha * consistency;
    MT_CHECK(std::isfinite(loss), "training diverged: loss is {} at step {} (lower train.lr?)",
             loss, plan.step);
    sync_gradients(reg, *rt.payload.world, *rt.payload.expert_dp);
    const double norm = grad_norm(reg, rt.groups.ep.get());
    opt.step(float(plan.lr), clip_scale(norm, cfg.grad_clip));
    wait_for(rt.device);  // the step's time includes its queued GPU work
    const double step_s = seconds_since(t0);
    if (step > first) allocations_after_first += arena.system_allocations() - allocs_before;
    train_seconds += step_s;
    interval_s += step_s;
    ++interval_steps;

    // Routing statistics of every MoE block, summed over the micro-batches and the ranks; for
    // the progress line, all blocks' dropped and chosen pairs and the most unequal load.
    double dropped = 0, choices = 0, load_ratio = 0;
    for (size_t b = 0; b < moe_blocks.size(); ++b) {
      const int i = moe_blocks[b];
      std::vector<double>& counts = block_load[b];
      rt.groups.world->all_reduce_sum(counts.data(), int64_t(counts.size()));
      const std::vector<double> load(counts.begin(), counts.begin() + E);
      double pairs = 0;
      for (double v : load) pairs += v;  // counted (token, expert) pairs
      dropped += counts[E];
      choices += counts[E + 1];
      if (pairs > 0)
        load_ratio =
            std::max(load_ratio, *std::max_element(load.begin(), load.end()) * double(E) / pairs);
      if (root) {
        results->record_row(fmt::format("/routing/block{}/load", i), load);
        results->record(fmt::format("/routing/block{}/dropped", i), counts[E]);
        results->record(fmt::format("/routing/block{}/choices", i), counts[E + 1]);
        results->record(fmt::format("/routing/block{}/experts_per_token", i),
                        pairs / double(tokens_per_step));
      }
    }
    if (step == first) r.first_loss = loss;
    r.final_loss = loss;
    if (root && gate.phases && plan.phase != recorded_phase) {
      recorded_phase = plan.phase;
      results->record("/phase/step", double(plan.step));
      results->record("/phase/id", double(plan.phase));
      say(fmt::format("phase | step {} | {}", step + 1, phase_name(plan.phase)));
    }
    if (root) {
      results->record("/train/step", double(plan.step));
      results->record("/train/tau", plan.tau);
      results->record("/train/loss", loss);
      results->record("/train/ce", ce_mean);
      results->record("/train/aux", aux);
      results->record("/train/consistency", consistency);
      results->record("/train/lr", plan.lr);
      results->record("/train/grad_norm", norm);
      results->record("/train/tokens_per_s", tokens_per_step / step_s);
      results->record("/train/step_s", step_s);
      results->record("/train/a2a_s", rt.a2a->seconds);
      results->record("/train/a2a_bytes", rt.a2a->bytes_sent);
      results->record("/train/a2a_calls", double(rt.a2a->calls));
      // The fraction of MoE layers that dropped their gate this step.
      results->record("/train/gate_drop",
                      moe_blocks.empty()
                          ? 0.0
                          : double(std::popcount(plan.gate_drop)) / double(moe_blocks.size()));
    }
    if (plan.log) {
      // The largest resident memory of any rank.
      std::vector<int> mb(rt.ranks());
      const int own = int(resident_mb());
      rt.groups.world->all_gather_ints(&own, mb.data(), 1);
      const double done = double(step + 1 - first);  // steps of this invocation
      const double per_token =
          moe_blocks.empty()
              ? train_flops_per_token(mc, 0)
              : train_flops_per_token(mc, choices / double(moe_blocks.size() * tokens_per_step));
      const double mean_s = interval_s / double(interval_steps);
      say(progress_line({.step = step + 1,
                         .total = cfg.steps,
                         .ce = ce_mean,
                         .aux = aux,
                         .consistency = consistency,
                         .moe = !moe_blocks.empty(),
                         .thor = thor,
                         .lr = plan.lr,
                         .grad_norm = norm,
                         .step_ms = 1e3 * mean_s,
                         .tokens_per_s = tokens_per_step / mean_s,
                         .mfu = per_token * passes * tokens_per_step / mean_s / gemm_peak,
                         .dropped = choices > 0 ? dropped / choices : 0,
                         .load_ratio = load_ratio,
                         .resident_mb = double(*std::max_element(mb.begin(), mb.end())),
                         .eta_s = seconds_since(start) / done * double(cfg.steps - step - 1),
                         .clock = wall_clock()}));
      interval_s = 0;
      interval_steps = 0;
    }
    if (plan.eval) {
      const LossValue v = evaluate(model, arena, valid_batches, cfg.batch_size, cfg.eval_batches,
                                   rt, eval_context(cfg.seed, last_plan), M);
      r.valid_loss = v.mean();
      r.valid_ppl = std::exp(v.mean());
      if (root) {
        results->record("/valid/step", double(plan.step));
        results->record("/valid/loss", r.valid_loss);
        results->record("/valid/ppl", r.valid_ppl);
      }
      say(fmt::format("valid | step {} | loss {:.4f} | ppl {:.2f} | {} tokens", step + 1,
                      r.valid_loss, r.valid_ppl, v.count));
    }
    if (plan.log || plan.eval || plan.checkpoint)
      rt.groups.world->on_root([&] {
        results->flush();
        if (plan.log)
          metrics->write("train", step + 1,
                         {{"loss", loss},
                          {"ce", ce_mean},
                          {"aux", aux},
                          {"consistency", consistency},
                          {"lr", plan.lr},
                          {"grad_norm", norm},
                          {"tokens_per_s", tokens_per_step / step_s},
                          {"step_s", step_s},
                          {"a2a_bytes", rt.a2a->bytes_sent}});
        if (plan.eval)
          metrics->write("valid", step + 1, {{"loss", r.valid_loss}, {"ppl", r.valid_ppl}});
      });
    steps_done = step + 1;
    if (plan.checkpoint) {
      const std::string path =
          fmt::format("{}/checkpoints/step_{:08d}.h5", cfg.run_dir(), step + 1);
      save_checkpoint(path, reg, opt, step + 1, cfg.ini, rt.groups, scheduler_state(), tokenizer);
      if (root) prune_checkpoints(cfg.run_dir(), cfg.keep_checkpoints);
      say(fmt::format("checkpoint | step {} | {}", step + 1, path));
    }
    if (plan.stop) break;
  }
  r.steps = steps_done;
  r.tokens_per_s = tokens_per_step * double(steps_done - first) / train_seconds;
  r.arena_allocations_after_first_step = allocations_after_first;
  r.arena_peak_bytes = arena.peak_bytes();
  if (steps_done < cfg.steps) {
    say(fmt::format("moetrain: stopped after step {} of {} ({}); resume with --resume latest",
                    steps_done, cfg.steps,
                    preemption_requested() ? "preemption signal" : "train.run_steps"));
    return r;
  }
  const std::string ckpt = cfg.run_dir() + "/checkpoint.h5";
  save_checkpoint(ckpt, reg, opt, cfg.steps, cfg.ini, rt.groups, scheduler_state(), tokenizer);
  say(fmt::format("moetrain: done in {} | {:.0f} tok/s | valid ppl {:.2f} (unigram {:.1f}) | {}",
                  format_duration(seconds_since(start)), r.tokens_per_s, r.valid_ppl, r.unigram_ppl,
                  ckpt));
  if (root) say(fmt::format("moetrain: results in {}", results->path()));
  return r;
}

}  // namespace mt
