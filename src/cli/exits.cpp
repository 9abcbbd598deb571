// moetrain exits: JEI-DNN's early exits trained on a frozen checkpoint, then the gated model
// against confidence thresholding on the same exits, on a split of the prepared corpus.
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <iostream>
#include <optional>

#include "cli/commands.hpp"
#include "io/checkpoint.hpp"
#include "io/config.hpp"
#include "tensor/error.hpp"
#include "train/evaluate.hpp"
#include "train/exits_train.hpp"

namespace po = boost::program_options;

namespace mt::cli {

int exits(const Args& args) {
  std::string checkpoint, output, resume, split = "test", device = "cpu",
                                          thresholds = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9";
  int64_t batches = 0;
  ExitsConfig x;
  po::options_description d("moetrain exits (config keys such as --data.dir also accepted)");
  // clang-format off
  d.add_options()
    ("help", "this help")
    ("checkpoint", po::value(&checkpoint), "the frozen backbone's checkpoint (required)")
    ("blocks", po::value(&x.blocks)->default_value(x.blocks), "exits after: moe (every MoE block but the last block), all, or indices as 1,3")
    ("lambda", po::value(&x.lambda)->default_value(x.lambda, "0.1"), "the oracle's weight of an exit's cost")
    ("steps", po::value(&x.steps)->default_value(x.steps), "training steps, the warm-up included")
    ("warmup", po::value(&x.warmup)->default_value(x.warmup), "steps of the heads' weighted warm-up (more than --steps: a run that stops inside it, to be resumed)")
    ("patience", po::value(&x.patience)->default_value(x.patience), "warm-up validations without a lower CE of an exit alone after which its head goes back to its best and waits for the warm-up's end (the authors' per-IM patience; 0: off)")
    ("switch_every", po::value(&x.switch_every)->default_value(x.switch_every), "steps per gate or head phase after the warm-up (gates first)")
    ("lr", po::value(&x.lr)->default_value(x.lr, "0.001"), "AdamW learning rate of the heads")
    ("gate_lr", po::value(&x.gate_lr)->default_value(x.gate_lr, "0.01"), "AdamW learning rate of the gates")
    ("im_loss", po::value(&x.im_loss)->default_value(x.im_loss), "code (the authors' code: a plain mean) | intent (exit-probability weighted)")
    ("eval_every", po::value(&x.eval_every)->default_value(x.eval_every), "steps between validations (they re-estimate the gates' positive weights)")
    ("eval_batches", po::value(&x.eval_batches)->default_value(x.eval_batches), "validation batches (0: the whole split)")
    ("kv", po::value(&x.kv)->default_value(x.kv), "an exited token at evaluation: propagate (its state frozen: later keys and values from it, no later experts) | full (full-depth keys and values)")
    ("thresholds", po::value(&thresholds)->default_value(thresholds), "the p_max thresholds compared")
    ("split", po::value(&split)->default_value(split), "the split scored at the end: valid | test | train")
    ("batches", po::value(&batches)->default_value(batches), "batches of that split (0: all of it)")
    ("output", po::value(&output), "the results file (default: the run folder's exits.h5)")
    ("save", po::value(&x.save), "the exits' checkpoint (default: the run folder's exits_checkpoint.h5)")
    ("save_every", po::value(&x.save_every)->default_value(x.save_every), "steps between checkpoints (0: only after the last step)")
    ("resume", po::value(&resume), "an exits' checkpoint to continue from (one written after --steps: score only)")
    ("device", po::value(&device)->default_value(device), "cpu | cuda (the backbone's device; exits run on the host)");
  // clang-format on
  po::variables_map vm;
  const Args rest = take_options(args, d, vm, "exits");
  if (vm.count("help")) {
    std::cout
        << "usage: moetrain exits --checkpoint FILE [--lambda L] [--section.key value ...]\n\n"
        << d;
    return 0;
  }
  MT_CHECK(!checkpoint.empty(), "exits: --checkpoint FILE is required");
  MT_CHECK(split == "valid" || split == "test" || split == "train",
           "exits: --split '{}' (valid, test or train)", split);
  MT_CHECK(x.im_loss == "code" || x.im_loss == "intent", "exits: --im_loss '{}' (code or intent)",
           x.im_loss);
  MT_CHECK(x.kv == "propagate" || x.kv == "full", "exits: --kv '{}' (propagate or full)", x.kv);
  MT_CHECK(x.steps > 0 && x.warmup >= 0 && x.switch_every > 0 && x.eval_every > 0 &&
               x.eval_batches >= 0 && x.save_every >= 0 && x.patience >= 0,
           "exits: --steps {} --warmup {} --switch_every {} --eval_every {} --eval_batches {} "
           "--save_every {} --patience {} (steps > 0; warmup, save_every and patience >= 0; "
           "the others positive)",
           x.steps, x.warmup, x.switch_every, x.eval_every, x.eval_batches, x.save_every,
           x.patience);
  MT_CHECK(x.lambda >= 0 && x.lr > 0 && x.gate_lr > 0,
           "exits: --lambda {} --lr {} --gate_lr {} (lambda >= 0, learning rates > 0)", x.lambda,
           x.lr, x.gate_lr);
  x.thresholds = exit_thresholds(thresholds);
  const Config cfg = parse_config(rest, checkpoint_config(checkpoint));
  const TokenSplit train = read_tokens(cfg.data_dir + "/train.h5");
  const TokenSplit valid = read_tokens(cfg.data_dir + "/valid.h5");
  const TokenSplit scored = read_tokens(cfg.data_dir + "/" + split + ".h5");
  Runtime rt = make_runtime(cfg, parse_device(device));
  ParamRegistry reg, heads, gates;
  const Gpt model = build_model(cfg, rt, train.vocab, reg);
  load_model(checkpoint, reg);
  const ExitHeads exits(heads, gates, model.config(), exit_blocks(x.blocks, model.config()));
  heads.allocate(), gates.allocate();
  gates.initialize(cfg.seed);
  exits.copy_embedding(reg.value(model.wte()));
  // The backbone routes as `moetrain eval` does it (EvoMoE by the checkpoint's phase).
  const PassContext base = checkpoint_eval_context(cfg, checkpoint);
  if (x.save.empty()) x.save = cfg.run_dir() + "/exits_checkpoint.h5";
  if (rt.root()) {
    std::string at;
    for (int l = 0; l < exits.count(); ++l) at += fmt::format(" {}", exits.block(l));
    fmt::print(
        "exits: {} | {} | exits after blocks{} | lambda {} | {} IM loss | {} keys and values\n",
        checkpoint, rt.describe(), at, x.lambda, x.im_loss, x.kv);
  }
  // The results: rank 0 writes them; a failed write stops every rank with its message.
  std::optional<ResultsFile> results;
  const std::map<std::string, std::string> attrs = run_attributes(rt);
  const std::string path = output.empty() ? cfg.run_dir() + "/exits.h5" : output;
  const std::string settings = fmt::format(
      "\n[exits]\nblocks = {}\nlambda = {}\nsteps = {}\nwarmup = {}\npatience = {}\n"
      "switch_every = {}\nlr = {}\ngate_lr = {}\nim_loss = {}\neval_every = {}\n"
      "eval_batches = {}\nkv = {}\nthresholds = {}\nsplit = {}\nbatches = {}\nsave_every = {}\n",
      x.blocks, x.lambda, x.steps, x.warmup, x.patience, x.switch_every, x.lr, x.gate_lr, x.im_loss,
      x.eval_every, x.eval_batches, x.kv, thresholds, split, batches, x.save_every);
  const std::string ini = cfg.ini + settings;
  const ExitsRun run{cfg,   x,     rt,    model, base,
                     exits, heads, gates, ini,   checkpoint_step(checkpoint)};
  // A resumed run keeps the validations up to its checkpoint's step.
  const int64_t resume_step = resume.empty() ? 0 : checkpoint_step(resume) + 1;
  rt.groups.world->on_root([&] {
    results.emplace(path, ini, attrs,
                    exits_series(exits.count(), exits.count() + 2 + int(x.thresholds.size())),
                    resume_step);
  });
  train_exits(run, train, valid, false, rt.root() ? &*results : nullptr, resume);
  const std::vector<ExitScore> scores = score_exits(run, scored, batches);
  rt.groups.world->on_root([&] { record_scores(*results, scores); });
  if (rt.root()) {
    fmt::print(
        "exits: {} split, {}, {} keys and values | method | ppl | accuracy | ECE | cost (JEI's, "
        "backbone's) | exits | experts' rows\n",
        split, scored.path, x.kv);
    for (const ExitScore& e : scores) {
      std::string shares;
      for (double v : e.share) shares += fmt::format(" {:.3f}", v);
      fmt::print("exits: | {} | {:.3f} | {:.4f} | {:.4f} | {:.4f} {:.4f} |{} | {:.4f}\n", e.method,
                 e.ppl, e.accuracy, e.ece, e.cost, e.backbone_cost, shares, e.dispatch);
    }
    fmt::print("exits: results in {}, the exits in {}\n", path, x.save);
  }
  return 0;
}

}  // namespace mt::cli
