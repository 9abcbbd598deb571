// JEI-DNN's training loop and the gated evaluation, on a frozen backbone.
#include "train/exits_train.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>

#include "io/checkpoint.hpp"
#include "model/gate_registry.hpp"
#include "optim/adamw.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "train/evaluate.hpp"
#include "train/exit_patience.hpp"

namespace mt {

namespace {
// The comma-separated numbers of `text` (each read whole by parse), or nothing where one is not
// a number or fails `ok`.
template <typename T, typename Parse, typename Ok>
std::optional<std::vector<T>> numbers(const std::string& text, Parse parse, Ok ok) {
  std::vector<T> out;
  std::stringstream words(text);
  for (std::string w; std::getline(words, w, ',');) {
    size_t used = 0;
    T v{};
    try {
      v = parse(w, &used);
    } catch (const std::exception&) {
      return std::nullopt;
    }
    if (used != w.size() || !ok(v)) return std::nullopt;
    out.push_back(v);
  }
  return out;
}
}  // namespace

std::vector<int> exit_blocks(const std::string& spec, const GptConfig& c) {
  std::vector<int> blocks;
  if (spec == "moe" || spec == "all") {
    for (int i = 0; i + 1 < c.n_layer; ++i)
      if (spec == "all" || c.is_moe_block(i)) blocks.push_back(i);
  } else {
    const auto list = numbers<int>(
        spec, [](const std::string& w, size_t* used) { return std::stoi(w, used); },
        [](int b) { return b >= 0; });
    MT_CHECK(list, "exits: --blocks '{}' (moe, all, or indices as 1,3)", spec);
    blocks = *list;
  }
  MT_CHECK(!blocks.empty(), "exits: --blocks {}: no block of this {}-block model{} takes an exit",
           spec, c.n_layer, spec == "moe" ? " (MoE blocks before the last)" : "");
  return blocks;
}

std::vector<double> exit_thresholds(const std::string& text) {
  const auto list = numbers<double>(
      text, [](const std::string& w, size_t* used) { return std::stod(w, used); },
      [](double v) { return v > 0 && v <= 1; });
  MT_CHECK(list && !list->empty(), "exits: --thresholds '{}' (probabilities in (0, 1] as 0.5,0.9)",
           text);
  return *list;
}

namespace {
constexpr int kBins = 15;  // ECE: equal-width bins of the predicted token's probability

// The evaluation sums of every policy, flat for one all-reduce: per policy the cross-entropy,
// correct tokens, both costs, tokens, rows sent to experts, tokens per exit and per bin (tokens,
// confidence, correct); then the oracle's exit counts.
struct Tally {
  int G, policies;
  std::vector<double> sums;
  Tally(int G, int policies) : G(G), policies(policies), sums(policies * width() + G + 1) {}
  int width() const { return 6 + G + 1 + 3 * kBins; }
  double* policy(int m) { return sums.data() + m * width(); }
  double* oracle() { return sums.data() + policies * width(); }
  // A counted token leaving at exit l with its cross-entropy, top probability and top-1 there.
  void add(int m, int l, double ce, double p_max, int correct, const std::vector<double>& jei,
           const std::vector<double>& plain) {
    double* s = policy(m);
    s[0] += ce, s[1] += correct, s[2] += jei[l], s[3] += plain[l], s[4] += 1;
    s[6 + l] += 1;
    double* bin = s + 6 + G + 1 + 3 * std::min(int(p_max * kBins), kBins - 1);
    bin[0] += 1, bin[1] += p_max, bin[2] += correct;
  }
};

// The policies: 0 JEI's gates, 1 + l every token at exit l (l = G: the backbone alone), then
// p_max at each threshold. Policy m's exit decision at exit l < G for a token with gate scores
// g [l + 1] (JEI's rule reads them) and top probability p_max there.
bool leaves(int m, int l, const float* g, float p_max, int G, const std::vector<double>& tau) {
  if (m == 0) {
    std::vector<float> p(l + 1), q(l + 1);
    exit_probabilities(g, l + 1, p.data(), q.data());  // a prefix: later gates change neither
    return q[l] >= 0.5f;
  }
  if (m <= G + 1) return l == m - 1;
  return p_max >= tau[m - G - 2];
}
float sigmoid(float s) {
  return 1.0f / (1.0f + std::exp(-s));
}

// The exits' costs (docs/methods.md §9.5) in JEI's accounting or the backbone's.
std::vector<double> costs(const ExitsRun& run, bool with_exits) {
  const GptConfig& c = run.model.config();
  return exit_costs(c, run.exits.blocks(), gate_traits(c.moe).choices, with_exits);
}

// The rows this rank sent to experts in a forward, over its MoE blocks.
double dispatched(const Gpt::Activations& acts) {
  double rows = 0;
  for (const Block::Cache& b : acts.blocks)
    for (int r : b.moe.send_rows) rows += r;
  return rows;
}

// Every policy's sums over `split` with full-depth keys and values (every block runs for every
// token, whatever its exit), and the oracle exits of lambda.
void tally_full(const ExitsRun& run, const TokenSplit& split, int64_t max_batches, Tally& out) {
  const GptConfig& c = run.model.config();
  const int G = run.exits.count();
  const std::vector<double> jei = costs(run, true), plain = costs(run, false);
  Arena arena(run.rt.device);
  for_each_eval_pass(
      run.model, arena, Batches(split, c.seq_len), run.cfg.batch_size, max_batches, run.rt,
      run.base, micro_batch(run.cfg, run.rt),
      [&](const Gpt::Activations& acts, const Tensor& logits, const Tensor& targets) {
        const ExitHeads::Pass p = run.exits.forward(arena, run.model, acts, logits, targets);
        std::vector<float> g(G);
        for (int64_t t = 0; t < p.tokens; ++t) {
          if (!p.counted[t]) continue;
          out.oracle()[oracle_exit(p.ce.data() + t * (G + 1), jei, run.x.lambda)] += 1;
          for (int l = 0; l < G; ++l) g[l] = sigmoid(p.score[t * G + l]);
          for (int m = 0; m < out.policies; ++m) {
            int l = 0;
            while (l < G && !leaves(m, l, g.data(), p.p_max[t * (G + 1) + l], G, run.x.thresholds))
              ++l;
            const int64_t at = t * (G + 1) + l;
            out.add(m, l, p.ce[at], p.p_max[at], p.correct[at], jei, plain);
          }
        }
        for (int m = 0; m < out.policies; ++m) out.policy(m)[5] += dispatched(acts);
      });
}

// Policy m's sums over `split` with CALM's state propagation (docs/methods.md §9.6): the exits
// decide block by block, and a token that left keeps its state, from which the later blocks take
// its keys and values, and reaches no later expert.
void tally_propagated(const ExitsRun& run, int m, const TokenSplit& split, int64_t max_batches,
                      Tally& out) {
  const GptConfig& c = run.model.config();
  const int G = run.exits.count();
  const std::vector<double> jei = costs(run, true), plain = costs(run, false);
  std::fill(out.policy(m), out.policy(m) + out.width(), 0.0);
  Arena arena(run.rt.device);
  Gpt::Activations acts;
  for_each_eval_batch(
      arena, Batches(split, c.seq_len), run.cfg.batch_size, max_batches, run.rt, run.base,
      micro_batch(run.cfg, run.rt),
      [&](const Tensor& tokens, const Tensor& targets, const PassContext& base) {
        const int64_t N = targets.numel();
        std::vector<uint8_t> alive(N, 1);
        std::vector<float> g(N * G);
        auto decide = [&](int l, const ExitHeads::Reading& r) {
          for (int64_t t = 0; t < N; ++t) {
            if (!alive[t]) continue;
            if (l < G) g[t * G + l] = sigmoid(run.exits.score(l, r.features[t]));
            if (l < G && !leaves(m, l, g.data() + t * G, r.p_max[t], G, run.x.thresholds)) continue;
            alive[t] = 0;
            if (targets.i32()[t] >= 0) out.add(m, l, r.ce[t], r.p_max[t], r.correct[t], jei, plain);
          }
        };
        PassContext ctx = base;
        ctx.route.alive = alive.data();
        const std::vector<int>& blocks = run.exits.blocks();
        const Tensor logits =
            run.model.forward(arena, tokens, acts, ctx, [&](int i, const Tensor& x) {
              const auto at = std::find(blocks.begin(), blocks.end(), i);
              if (at == blocks.end()) return;
              const int l = int(at - blocks.begin());
              decide(l, run.exits.read(arena, run.exits.logits(arena, run.model, x, l), targets));
            });
        Tensor z = arena.host().alloc(logits.shape);
        ops::copy(logits, z);
        decide(G, run.exits.read(arena, z, targets));
        out.policy(m)[5] += dispatched(acts);
      });
}

// Every policy's sums over all ranks: the full-depth pass (the oracle's counts and, kv = full,
// every policy), then (kv = propagate) JEI's gates and, unless only_jei, every other policy but
// the backbone alone propagated (an exit alone differs from its full-depth row only in the
// experts' rows).
Tally tally(const ExitsRun& run, const TokenSplit& split, int64_t max_batches, bool only_jei) {
  const int G = run.exits.count();
  Tally out(G, G + 2 + int(run.x.thresholds.size()));
  tally_full(run, split, max_batches, out);
  if (run.x.kv == "propagate")
    for (int m = 0; m < (only_jei ? 1 : out.policies); ++m)
      if (m != G + 1) tally_propagated(run, m, split, max_batches, out);
  run.rt.groups.world->all_reduce_sum(out.sums.data(), int64_t(out.sums.size()));
  return out;
}

std::vector<ExitScore> scores(const ExitsRun& run, Tally& t) {
  std::vector<ExitScore> out;
  const double rows = std::max(t.policy(t.G + 1)[5], 1.0);  // the backbone's
  for (int m = 0; m < t.policies; ++m) {
    const double* s = t.policy(m);
    const double n = std::max(s[4], 1.0);
    ExitScore e;
    e.method = m == 0         ? "jei"
               : m == t.G + 1 ? "backbone"
               : m <= t.G     ? fmt::format("exit {} (block {})", m - 1, run.exits.block(m - 1))
                              : fmt::format("p_max >= {}", run.x.thresholds[m - t.G - 2]);
    e.loss = s[0] / n, e.ppl = std::exp(e.loss), e.accuracy = s[1] / n;
    e.cost = s[2] / n, e.backbone_cost = s[3] / n, e.dispatch = s[5] / rows;
    for (int l = 0; l <= t.G; ++l) e.share.push_back(s[6 + l] / n);
    for (int b = 0; b < kBins; ++b) {
      const double* bin = s + 6 + t.G + 1 + 3 * b;
      e.ece += std::abs(bin[2] - bin[1]) / n;  // |accuracy - confidence| * tokens / N
    }
    out.push_back(e);
  }
  return out;
}

std::string describe(const ExitScore& e) {
  std::string shares;
  for (double v : e.share) shares += fmt::format(" {:.0f}%", 100 * v);
  return fmt::format(
      "ppl {:.2f} | accuracy {:.3f} | ECE {:.3f} | cost {:.3f} (backbone {:.3f}) |"
      " exits{} | experts' rows {:.3f}",
      e.ppl, e.accuracy, e.ece, e.cost, e.backbone_cost, shares, e.dispatch);
}
}  // namespace

std::vector<Series> exits_series(int G, int policies) {
  std::vector<Series> s = {{"/exits/valid/step"}};
  for (const char* name : {"ppl", "accuracy", "ece", "cost", "backbone_cost", "dispatch"})
    s.push_back({fmt::format("/exits/valid/{}", name)});
  s.push_back({"/exits/valid/share", G + 1});
  s.push_back({"/exits/valid/pos_weight", G});
  s.push_back({"/exits/valid/alone_ce", G});
  for (const char* name : {"ppl", "accuracy", "ece", "cost", "backbone_cost", "dispatch"})
    s.push_back({fmt::format("/exits/score/{}", name), policies});
  s.push_back({"/exits/score/share", policies * (G + 1)});
  return s;
}

void record_scores(ResultsFile& results, const std::vector<ExitScore>& scores) {
  std::vector<double> ppl, accuracy, ece, cost, backbone, dispatch, share;
  for (const ExitScore& e : scores) {
    ppl.push_back(e.ppl), accuracy.push_back(e.accuracy), ece.push_back(e.ece);
    cost.push_back(e.cost), backbone.push_back(e.backbone_cost), dispatch.push_back(e.dispatch);
    share.insert(share.end(), e.share.begin(), e.share.end());
  }
  results.record_row("/exits/score/ppl", ppl);
  results.record_row("/exits/score/accuracy", accuracy);
  results.record_row("/exits/score/ece", ece);
  results.record_row("/exits/score/cost", cost);
  results.record_row("/exits/score/backbone_cost", backbone);
  results.record_row("/exits/score/dispatch", dispatch);
  results.record_row("/exits/score/share", share);
  results.flush();
}

std::vector<ExitScore> score_exits(const ExitsRun& run, const TokenSplit& split,
                                   int64_t max_batches) {
  Tally t = tally(run, split, max_batches, false);
  return scores(run, t);
}

namespace {
std::string pos_weight_key(int l) {
  return fmt::format("pos_weight_{}", l);
}
}  // namespace

void train_exits(const ExitsRun& run, const TokenSplit& train, const TokenSplit& valid, bool quiet,
                 ResultsFile* results, const std::string& resume) {
  const Config& cfg = run.cfg;
  const ExitsConfig& x = run.x;
  const GptConfig& c = run.model.config();
  const int G = run.exits.count();
  auto say = [&](const std::string& s) {
    if (run.rt.root() && !quiet) fmt::print("{}\n", s), std::fflush(stdout);
  };
  const ImLoss im = x.im_loss == "intent" ? ImLoss::Intent : ImLoss::Code;
  const std::vector<double> cost = costs(run, true);
  std::vector<float> pos_weight(G, 1.0f);  // until the first validation estimates them
  AdamW heads_opt(run.heads, cfg.adamw), gates_opt(run.gates, cfg.adamw);
  ExitPatience patience(run.exits, run.heads, x.patience);
  int64_t first = 0;
  if (!resume.empty()) {
    first = checkpoint_step(resume);
    MT_CHECK(first <= x.steps, "exits: {} was written after step {}, and --steps is {}", resume,
             first, x.steps);
    const int64_t backbone = int64_t(checkpoint_value(resume, "backbone_step"));
    MT_CHECK(backbone == run.backbone_step,
             "exits: {} trained exits on a backbone after step {}; --checkpoint's is after step {}",
             resume, backbone, run.backbone_step);
    load_model(resume, run.heads), load_model(resume, run.gates);
    heads_opt.set_steps(load_optimizer(resume, run.heads, heads_opt, "heads_step"));
    gates_opt.set_steps(load_optimizer(resume, run.gates, gates_opt, "gates_step"));
    for (int l = 0; l < G; ++l) pos_weight[l] = float(checkpoint_value(resume, pos_weight_key(l)));
    patience.load(resume, heads_opt);
    say(fmt::format("exits: resumed from {} after step {}", resume, first));
  }
  auto save = [&](int64_t steps) {
    std::map<std::string, double> state = patience.state();
    state["backbone_step"] = double(run.backbone_step);
    for (int l = 0; l < G; ++l) state[pos_weight_key(l)] = pos_weight[l];
    save_checkpoint(x.save,
                    {{run.heads, heads_opt, "heads_step"},
                     {run.gates, gates_opt, "gates_step"},
                     patience.part()},
                    steps, run.ini, run.rt.groups, state);
  };
  const Batches batches(train, c.seq_len);
  const int64_t B = local_batch(cfg, run.rt);
  Arena arena(run.rt.device);
  Gpt::Activations acts;
  for (int64_t step = first; step < x.steps; ++step) {
    const bool warm = step < x.warmup;
    const bool gates = !warm && (step - x.warmup) / x.switch_every % 2 == 0;
    arena.reset();
    Tensor tokens = arena.host().alloc({B, c.seq_len}, DType::I32);
    Tensor targets = arena.host().alloc({B, c.seq_len}, DType::I32);
    const int64_t first_row = run.rt.rank() * B;
    // Windows of their own draw: the seed's stream after the backbone's steps.
    batches.random(cfg.seed, cfg.steps + step, first_row, tokens, targets);
    PassContext ctx = run.base;
    ctx.a2a = run.rt.a2a.get();
    ctx.route.training = false;
    ctx.route.step = cfg.steps + step;
    ctx.global_sequences = cfg.batch_size;
    ctx.first_sequence = first_row;
    const Tensor logits = run.model.forward(arena, tokens, acts, ctx);
    const ExitHeads::Pass p = run.exits.forward(arena, run.model, acts, logits, targets);
    double counted = 0;
    for (uint8_t v : p.counted) counted += v;
    run.rt.groups.world->all_reduce_sum(&counted, 1);
    double loss[2] = {0, 0};  // this rank's share of the phase's loss; the mean exit CE
    for (int64_t t = 0; t < p.tokens; ++t)
      for (int l = 0; l < G && p.counted[t]; ++l) loss[1] += p.ce[t * (G + 1) + l];
    if (gates) {
      std::vector<int32_t> oracle(p.tokens);
      for (int64_t t = 0; t < p.tokens; ++t)
        oracle[t] = p.counted[t] ? oracle_exit(p.ce.data() + t * (G + 1), cost, x.lambda) : -1;
      std::vector<float> ds(p.tokens * G);
      loss[0] =
          gate_bce(p.score.data(), oracle.data(), p.tokens, G, pos_weight, counted * G, ds.data()) /
          (counted * G);
      run.gates.zero_grads();
      run.exits.gates_backward(p, ds.data());
      run.rt.groups.world->all_reduce_sum(run.gates.grads(), run.gates.total_elements());
      gates_opt.step(float(x.gate_lr));
    } else {
      run.heads.zero_grads();
      // Warm-up: a sum over exits of batch means (the authors'); after it, the mean over both.
      run.exits.heads_backward(p, warm ? ImLoss::Warmup : im, warm ? counted : counted * G);
      run.rt.groups.world->all_reduce_sum(run.heads.grads(), run.heads.total_elements());
      heads_opt.step(float(x.lr));
    }
    run.rt.groups.world->all_reduce_sum(loss, 2);
    MT_CHECK(std::isfinite(loss[0]) && std::isfinite(loss[1]),
             "exits: the loss is not finite at step {} (lower --lr?)", step + 1);
    const bool eval = (step + 1) % x.eval_every == 0 || step + 1 == x.warmup || step + 1 == x.steps;
    if (eval) {
      Tally t = tally(run, valid, x.eval_batches, true);
      const std::vector<double> counts(t.oracle(), t.oracle() + G + 1);
      double n = 0;
      for (double v : counts) n += v;
      pos_weight = positive_weights(counts, n);
      const std::vector<ExitScore> s = scores(run, t);
      std::vector<double> alone(G);  // each exit's cross-entropy alone
      for (int l = 0; l < G; ++l) alone[l] = s[1 + l].loss;
      run.rt.groups.world->on_root([&] {
        results->record("/exits/valid/step", double(step + 1));
        results->record("/exits/valid/ppl", s[0].ppl);
        results->record("/exits/valid/accuracy", s[0].accuracy);
        results->record("/exits/valid/ece", s[0].ece);
        results->record("/exits/valid/cost", s[0].cost);
        results->record("/exits/valid/backbone_cost", s[0].backbone_cost);
        results->record("/exits/valid/dispatch", s[0].dispatch);
        results->record_row("/exits/valid/share", s[0].share);
        results->record_row("/exits/valid/pos_weight",
                            std::vector<double>(pos_weight.begin(), pos_weight.end()));
        results->record_row("/exits/valid/alone_ce", alone);
        results->flush();
      });
      say(fmt::format("exits | step {} | {} | exit CE {:.4f}{} | valid {}", step + 1,
                      warm    ? "warm-up"
                      : gates ? "gates"
                              : "heads",
                      loss[1] / (counted * G),
                      gates ? fmt::format(" | gate BCE {:.4f}", loss[0]) : "", describe(s[0])));
      if (warm)
        for (const int l : patience.validated(alone, heads_opt))
          say(
              fmt::format("exits | step {} | exit {} did not improve (valid CE {:.4f} alone) and "
                          "waits for the warm-up's end at its best head",
                          step + 1, l, alone[l]));
    }
    if (step + 1 == x.warmup) patience.release(heads_opt);
    if ((x.save_every > 0 && (step + 1) % x.save_every == 0) || step + 1 == x.steps) save(step + 1);
  }
}

}  // namespace mt
