#!/usr/bin/python3
"""Compares the routing methods on the bundled corpus: several seeds each, mean and standard
deviation of the best validation perplexity, at equal steps and compute-matched (THOR runs two
passes per step, so Switch also runs twice the steps), with capacity groups of a rank's whole
batch and capacity factor 2.0 (so Switch drops a few percent; the drop rate is reported), Gating Dropout's saving as
exchange bytes and calls, and a verdict per seed claim. Writes table.md, compare.h5,
valid_curves.png and experts_per_token.png under OUT/REGIME.

Finished runs under OUT/REGIME/runs are reused, so the comparison can run in pieces (one
--methods list at a time) and a last call with every method writes the whole table.

Regimes:
- full: the whole training split (about 5 M tokens), no dropout, STEPS steps;
- subset: the first SUBSET_TOKENS tokens of the training split (200 000 by default; the
  validation split unchanged), several epochs (600 steps: 3.1), with dropout and label smoothing
  as in the papers' baselines (0.1 each by default), so that regularisers can act.

Each method is its config in configs/ (dense: demo.ini; Switch: demo_moe.ini; gshard, hash,
thor, switch_gd, evomoe, dselect_k, comet, comet_perm) with the same size overrides, on the same ranks.
Experts are as wide as the dense FFN, so a token's active FLOPs match the dense model's, except
GShard's (two experts), THOR's (two passes per step), EvoMoE's dense-to-sparse phase (up to E
experts per token) and DSelect-k's and COMET's (up to E experts per token until their smooth
steps saturate, then at most k = 2; the table gives experts per token at the first and the last
logged step).

usage: /usr/bin/python3 tools/compare_methods.py [--regime full|subset] [--steps 300]
           [--seeds 1 2 3] [--ranks 2] [--methods NAME ...] [--subset_tokens 200000]
           [--dropout 0.1] [--label_smoothing 0.1] [--out results/compare]
           [--bin build/moetrain]  (a copy of the binary lets the build change meanwhile)
"""
import argparse
import math
import os
import subprocess
import sys

import h5py
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METHODS = {  # name: (config, steps factor, note on active FLOPs per token, extra flags)
    "dense": ("configs/demo.ini", 1, "1 FFN", []),
    "switch": ("configs/demo_moe.ini", 1, "1 expert", []),
    "switch_2x": ("configs/demo_moe.ini", 2, "1 expert, twice the steps (THOR's compute)", []),
    "gshard": ("configs/gshard.ini", 1, "2 experts (2x FFN FLOPs in MoE blocks)", []),
    "hash": ("configs/hash.ini", 1, "1 expert", []),
    "thor": ("configs/thor.ini", 1, "1 expert, 2 passes per step (2x step FLOPs)", []),
    # The reference accumulates 8 micro-batches per update, each with its own draw.
    "thor_mb8": ("configs/thor.ini", 1, "as thor, 8 micro-batches per step (8 draws per layer)",
                 ["--train.micro_batch_size", "1", "--moe.group_sequences", "1"]),
    "switch_gd": ("configs/switch_gd.ini", 1, "1 expert", []),
    "evomoe": ("configs/evomoe.ini", 1, "1 expert; up to 8 while the gate is dense", []),
    "dselect_k": ("configs/dselect_k.ini", 1, "up to 8 experts while the smooth steps are open; "
                  "at most k = 2 once they saturate", []),
    "comet": ("configs/comet.ini", 1, "up to 8 experts while the trees' nodes are open; at most "
              "k = 2 once they saturate", []),
    "comet_perm": ("configs/comet_perm.ini", 1, "as comet; every expert while the permutation "
                   "is learned (the first 100 steps)", []),
}
BATCH, RANKS_DEFAULT, CAPACITY = 16, 2, 2.0
SIZE = ["--moe.capacity_factor", str(CAPACITY), "--model.seq_len", "64", "--model.d_model", "128", "--model.n_layer", "4",
        "--model.n_head", "4", "--model.d_ff", "512", "--train.batch_size", str(BATCH),
        "--train.eval_batches", "50", "--train.log_every", "100"]

# The seed papers' claims (docs/methods.md names the papers) as (claim, method, reference):
# "holds" when the method's best validation perplexity is lower by at least two standard errors.
# For the "matches" and "no worse" claims an unresolved difference is what the claim predicts.
CLAIMS = [
    ("THOR beats Switch at equal steps", "thor", "switch"),
    ("THOR beats Switch at equal compute", "thor", "switch_2x"),
    ("THOR with the reference's 8 draws per step beats Switch", "thor_mb8", "switch"),
    ("THOR with the reference's 8 draws per step beats Switch at equal compute", "thor_mb8",
     "switch_2x"),
    ("Random routing (hash) matches learned routing (Switch)", "hash", "switch"),
    ("Gating Dropout trains no worse than Switch", "switch_gd", "switch"),
    ("EvoMoE beats Switch", "evomoe", "switch"),
    ("DSelect-k beats top-k routing (Switch)", "dselect_k", "switch"),
    ("COMET beats DSelect-k", "comet", "dselect_k"),
    ("COMET beats top-k routing (Switch)", "comet", "switch"),
    ("COMET+ (the permutation search) is no worse than COMET", "comet_perm", "comet"),
]


def subset_data(out, tokens):
    """The first `tokens` training tokens beside the full validation and test splits."""
    folder = f"{out}/data"
    os.makedirs(folder, exist_ok=True)
    for split in ("train", "valid", "test"):
        with h5py.File(f"data/sword/{split}.h5") as src, h5py.File(f"{folder}/{split}.h5", "w", libver="latest") as f:
            t = src["tokens"][()]
            f["tokens"] = t[:tokens] if split == "train" else t
            for k, v in src.attrs.items():
                f.attrs[k] = v
    for name in ("tokenizer.model", "tokenizer.vocab"):
        if os.path.exists(f"data/sword/{name}") and not os.path.exists(f"{folder}/{name}"):
            os.symlink(os.path.abspath(f"data/sword/{name}"), f"{folder}/{name}")
    return folder


def run(name, seed, steps, ranks, out, extra, binary):
    """Trains one method with one seed, or reuses its finished run (delete OUT/REGIME/runs to
    train again), and reads its results."""
    config, factor, _, own = METHODS[name]
    steps *= factor
    run_name = f"{name}_s{seed}"
    local = BATCH // ranks  # capacity groups of a rank's whole batch
    mpi = ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none",
           "-x", "OMP_NUM_THREADS=1", "-x", "OMPI_MCA_mpi_yield_when_idle=1"]
    if os.geteuid() == 0:
        mpi.append("--allow-run-as-root")
    cmd = mpi + [binary, "train", "--config", config, *SIZE, *extra,
                 "--moe.group_sequences", str(local), "--train.steps", str(steps),
                 "--train.warmup", str(max(1, steps // 10)), "--train.eval_every",
                 str(max(1, steps // 6)), "--run.seed", str(seed), "--run.name", run_name,
                 "--run.results_dir", out + "/runs", "--run.overwrite", "true",  # an unfinished run
                 *own]  # the method's own flags win
    if os.path.exists(f"{out}/runs/{run_name}/checkpoint.h5"):  # written when a run finishes
        print(f"reusing {out}/runs/{run_name}", flush=True)
    else:
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with h5py.File(f"{out}/runs/{run_name}/results.h5") as f:
        blocks = [k for k in f.get("routing", {}).keys()]
        dropped = sum(f[f"routing/{b}/dropped"][()].sum() for b in blocks)
        routed = sum(f[f"routing/{b}/load"][()].sum() for b in blocks)
        # Experts per token, mean over the MoE blocks, at the first and the last logged step.
        per_token = np.mean([f[f"routing/{b}/experts_per_token"][()] for b in blocks], axis=0) \
            if blocks else np.ones(2)
        return {"valid_step": f["valid/step"][()] + 1, "valid_ppl": f["valid/ppl"][()],
                "best_ppl": float(f["valid/ppl"][()].min()),
                "tokens_per_s": float(np.median(f["train/tokens_per_s"][()])),
                "a2a_bytes": float(np.mean(f["train/a2a_bytes"][()])),
                "a2a_calls": float(np.mean(f["train/a2a_calls"][()])),
                "drop_rate": float(dropped / routed) if routed else 0.0,
                "experts_first": float(per_token[0]), "experts_last": float(per_token[-1]),
                "experts_curve": per_token, "log_step": f["train/step"][()] + 1}


def plot(path, series, ylabel, title, log=False, line=None):
    """One figure: series {label: (steps, values)}, a log y axis, a labelled horizontal line."""
    plt.figure(figsize=(8, 5))
    for label, (x, y) in series.items():
        plt.plot(x, y, marker="o" if len(x) <= 20 else None, label=label)
    if line:
        plt.axhline(line[0], color="gray", lw=0.8, ls="--", label=line[1])
    if log:
        plt.yscale("log")
    plt.xlabel("step")
    plt.ylabel(ylabel)
    plt.title(title)
    plt.legend()
    plt.grid(alpha=0.3)
    plt.savefig(path, dpi=120, bbox_inches="tight")
    plt.close()


def verdict(a, b):
    """a, b: best perplexities per seed. "unresolved" when the means differ by less than two
    standard errors of their difference; else "holds" when a's is lower."""
    d = np.mean(a) - np.mean(b)
    se = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
    if abs(d) < 2 * se:
        return "unresolved", d, se
    return ("holds" if d < 0 else "does not hold"), d, se


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--regime", choices=["full", "subset"], default="full")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--ranks", type=int, default=RANKS_DEFAULT)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--subset_tokens", type=int, default=200000)
    ap.add_argument("--dropout", type=float, default=None, help="default: 0 full, 0.1 subset")
    ap.add_argument("--label_smoothing", type=float, default=None, help="as --dropout")
    ap.add_argument("--out", default="results/compare")
    ap.add_argument("--bin", default="build/moetrain")
    args = ap.parse_args()
    out = f"{args.out}/{args.regime}"
    os.makedirs(out, exist_ok=True)
    subset = args.regime == "subset"
    dropout = args.dropout if args.dropout is not None else (0.1 if subset else 0.0)
    smoothing = args.label_smoothing if args.label_smoothing is not None else dropout
    extra = ["--model.dropout", str(dropout), "--train.label_smoothing", str(smoothing)]
    if subset:
        extra += ["--data.dir", subset_data(out, args.subset_tokens)]
    results = {m: [run(m, s, args.steps, args.ranks, out, extra, args.bin) for s in args.seeds]
               for m in args.methods}

    tokens = args.steps * BATCH * 64
    command = (f"/usr/bin/python3 tools/compare_methods.py --regime {args.regime} --steps "
               f"{args.steps} --ranks {args.ranks} --seeds {' '.join(map(str, args.seeds))}"
               + (f" --subset_tokens {args.subset_tokens}" if subset else "")
               + (f" --methods {' '.join(args.methods)}" if args.methods != list(METHODS) else ""))
    data = (f"the first {args.subset_tokens} training tokens, {tokens / args.subset_tokens:.1f} "
            "epochs" if subset else "the whole training split")
    lines = [f"# Routing methods compared: {args.regime} regime", "", f"Command: `{command}`.", "",
             f"Model: d=128, 4 blocks (2 MoE blocks of 8 experts as wide as the dense FFN, 512), "
             f"context 64, batch {BATCH} ({args.steps} steps = {tokens} tokens; {data}), "
             f"dropout {dropout}, label smoothing {smoothing}, {args.ranks} ranks, capacity groups "
             f"of {BATCH // args.ranks} sequences at capacity factor {CAPACITY} (Switch, GShard, "
             "Gating Dropout; hash, THOR, EvoMoE, DSelect-k, COMET and COMET+ are dropless); validation on 50 x 16 windows of the validation "
             "split. Best validation perplexity over the run's evaluations, mean +- standard "
             f"deviation over seeds {args.seeds}.", "",
             "| method | best valid ppl (per seed) | mean +- sd | choices dropped | experts per "
             "token (first -> last log) | a2a bytes/step | a2a calls/step | tokens/s | active "
             "FLOPs per token |",
             "|---|---|---|---|---|---|---|---|---|"]
    with h5py.File(f"{out}/compare.h5", "w") as h:
        h.attrs["command"] = command
        for m in args.methods:
            rs = results[m]
            best = [r["best_ppl"] for r in rs]
            lines.append(
                f"| {m} | {' / '.join(f'{p:.2f}' for p in best)} | {np.mean(best):.2f} +- "
                f"{np.std(best, ddof=1):.2f} | {100 * np.mean([r['drop_rate'] for r in rs]):.2f}% | "
                f"{np.mean([r['experts_first'] for r in rs]):.2f} -> "
                f"{np.mean([r['experts_last'] for r in rs]):.2f} | "
                f"{np.mean([r['a2a_bytes'] for r in rs]):.0f} | "
                f"{np.mean([r['a2a_calls'] for r in rs]):.1f} | "
                f"{np.mean([r['tokens_per_s'] for r in rs]):.0f} | {METHODS[m][2]} |")
            g = h.create_group(m)
            for key in ("best_ppl", "tokens_per_s", "a2a_bytes", "a2a_calls", "drop_rate",
                        "experts_first", "experts_last"):
                g[key] = np.array([r[key] for r in rs])
            g["valid_step"] = rs[0]["valid_step"]
            g["valid_ppl"] = np.stack([r["valid_ppl"] for r in rs])
    lines += ["", "| claim | method | reference | difference of means (ppl) | 2 standard errors "
              "| verdict |", "|---|---|---|---|---|---|"]
    for claim, a, b in CLAIMS:
        if a in results and b in results:
            v, d, se = verdict([r["best_ppl"] for r in results[a]],
                               [r["best_ppl"] for r in results[b]])
            lines.append(f"| {claim} | {a} | {b} | {d:+.2f} | {2 * se:.2f} | {v} |")
    if "switch_gd" in results and "switch" in results:
        gd, sw = results["switch_gd"], results["switch"]
        saved = 1 - np.mean([r["a2a_bytes"] for r in gd]) / np.mean([r["a2a_bytes"] for r in sw])
        calls = 1 - np.mean([r["a2a_calls"] for r in gd]) / np.mean([r["a2a_calls"] for r in sw])
        lines += ["", f"Gating Dropout's saving against Switch: {100 * saved:.1f}% of the "
                  f"exchanged bytes and {100 * calls:.1f}% of the exchange calls per step."]
    with open(f"{out}/table.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

    seeds = len(args.seeds)
    plot(f"{out}/valid_curves.png", {m: (results[m][0]["valid_step"], np.mean(
        [r["valid_ppl"] for r in results[m]], axis=0)) for m in args.methods},
        f"validation perplexity (mean of {seeds} seeds)",
        f"Routing methods on the bundled corpus ({args.regime})", log=True)
    # Experts per token of the methods whose routing is not fixed at one or two experts.
    curves = {m: np.mean([r["experts_curve"] for r in results[m]], axis=0) for m in args.methods}
    plot(f"{out}/experts_per_token.png",
         {m: (results[m][0]["log_step"][:len(c)], c) for m, c in curves.items() if c.max() > 2},
         f"experts per token (mean of the MoE blocks and {seeds} seeds)",
         f"Experts per token as training goes ({args.regime})", line=(2, "k = 2"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
