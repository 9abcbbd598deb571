// JEI-DNN on a trained, frozen moetrain model (docs/methods.md §9): trains the exits' heads and
// gates (warm-up, then alternating gate and IM phases) on every rank of the runtime, and
// evaluates the gated model, and confidence thresholding on the same exits, on a split.
#pragma once
#include <string>
#include <vector>

#include "io/results.hpp"
#include "io/tokens.hpp"
#include "model/exits.hpp"
#include "train/runtime.hpp"

namespace mt {

struct ExitsConfig {
  std::string blocks = "moe";  // "moe" (after every MoE block), "all", or indices "1,3"
  double lambda = 0.1;         // the oracle's cost weight
  int64_t steps = 400, warmup = 200;
  int64_t patience = 2;       // warm-up validations without a better exit before it waits (0: off)
  int64_t switch_every = 50;  // steps per gate or IM phase after the warm-up (gates first)
  double lr = 1e-3, gate_lr = 1e-2;  // AdamW's, of the heads and of the gates (5 numbers each)
  std::string im_loss = "code";      // code | intent (docs/methods.md §9.4)
  int64_t eval_every = 100, eval_batches = 20;
  // At evaluation an exited token's state is frozen (propagate: CALM's state propagation, its
  // later keys and values from that state, no later experts) or it runs on (full: full-depth
  // keys and values, as in training).
  std::string kv = "propagate";
  std::string save;        // the exits' checkpoint (docs/methods.md §9.6)
  int64_t save_every = 0;  // steps between checkpoints (0: only after the last step)
  std::vector<double> thresholds = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
};

// The blocks the exits follow: "moe", "all" (every block but the last) or a list of indices.
std::vector<int> exit_blocks(const std::string& spec, const GptConfig& c);

// The p_max thresholds of a comma-separated list ("0.5,0.9"), each in (0, 1].
std::vector<double> exit_thresholds(const std::string& text);

// One exit policy's results over the counted tokens of a split.
struct ExitScore {
  std::string method;  // "jei", "exit 0 (block 1)", "backbone", "p_max >= 0.5"
  double loss = 0, ppl = 0, accuracy = 0, ece = 0;
  double cost = 0, backbone_cost = 0;  // mean exit cost, JEI's accounting and the backbone's
  double dispatch = 1;                 // rows sent to experts, a share of the backbone's
  std::vector<double> share;           // of tokens leaving at each exit (the last: the head)
};

// What a run of the exits works on: the frozen backbone `model` on the runtime's ranks, and the
// exits with their two registries (allocated, the heads copied from the embedding).
struct ExitsRun {
  const Config& cfg;
  const ExitsConfig& x;
  Runtime& rt;
  const Gpt& model;
  const PassContext& base;  // the backbone's evaluation settings (checkpoint_eval_context)
  const ExitHeads& exits;
  ParamRegistry &heads, &gates;
  const std::string& ini;  // the backbone's config and the [exits] settings, for the checkpoint
  int64_t backbone_step;   // the steps the backbone's checkpoint was written after
};
// The series of `moetrain exits`' results file for G exits and P policies: per validation
// /exits/valid/{step, ppl, accuracy, ece, cost, backbone_cost, dispatch} (the gated model's),
// share [G + 1], pos_weight [G] and alone_ce [G] (each exit's cross-entropy alone); at the end
// /exits/score/{ppl, accuracy, ece, cost, backbone_cost, dispatch} [P] and share [P * (G + 1)],
// the policies in score_exits' order.
std::vector<Series> exits_series(int G, int policies);
void record_scores(ResultsFile& results, const std::vector<ExitScore>& scores);

// The warm-up, then the alternating phases, printing each validation's figures (rank 0, unless
// quiet) and recording them in `results` (rank 0's; null elsewhere). Writes x.save every
// x.save_every steps and after the last: the heads and gates with their AdamW moments and step
// counts, the warm-up's best heads and patience counts, the positive weights and the backbone's
// step. resume: such a file to continue from
// (bitwise as if never stopped; written after x.steps steps, nothing is trained).
void train_exits(const ExitsRun& run, const TokenSplit& train, const TokenSplit& valid, bool quiet,
                 ResultsFile* results, const std::string& resume = "");
// The gated model (JEI's q >= 0.5 rule), every exit alone, the backbone alone and p_max
// thresholding at each of x.thresholds on `split` (max_batches 0: all of it), summed over the
// ranks; the gated model and the thresholds with x.kv's keys and values.
std::vector<ExitScore> score_exits(const ExitsRun& run, const TokenSplit& split,
                                   int64_t max_batches);

}  // namespace mt
