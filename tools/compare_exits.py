#!/usr/bin/python3
"""JEI-DNN's early exits against confidence thresholding on the same backbone and exits, over
several seeds (docs/methods.md §9, docs/comparison.md): trains configs/jei.ini's backbone per
seed (on data/sword512, prepared here when missing), runs `moetrain exits` at each lambda, and
compares JEI's gated perplexity and ECE with p_max thresholding's at the same mean cost (its
curve over the thresholds and the backbone, interpolated in cost, JEI's accounting). Writes
OUT/table.md (table_full.md for --kv full, table_intent.md for --im_loss intent, both:
table_full_intent.md) and OUT/runs/. Finished runs are reused.

usage: /usr/bin/python3 tools/compare_exits.py [--seeds 1 2 3] [--lambdas 0.02 0.1 0.5]
           [--kv propagate] [--im_loss code] [--ranks 2] [--batches 40]
           [--out results/compare/exits]
           [--bin build/moetrain]
"""
import argparse
import json
import os
import subprocess

import numpy as np

from compare_methods import verdict

DATA = "data/sword512"
KV = {"propagate": "an exited token's state frozen (its later keys and values from it, no later "
                   "experts)",
      "full": "every block run for every token (full-depth keys and values)"}


def mpirun(ranks):
    cmd = ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none",
           "-x", "OMP_NUM_THREADS=1", "-x", "OMPI_MCA_mpi_yield_when_idle=1"]
    return cmd + (["--allow-run-as-root"] if os.geteuid() == 0 else [])


def prepare(binary):
    if os.path.exists(f"{DATA}/test.h5"):
        return
    if not os.path.exists("data/raw/train.txt"):
        subprocess.run(["/usr/bin/python3", "tools/extract_corpus.py", "data/raw"], check=True)
    subprocess.run([binary, "prepare", "--input", "data/raw", "--output", DATA,
                    "--vocab_size", "512"], check=True, stdout=subprocess.DEVNULL)


def table(text):
    """The final table of `moetrain exits`: {method: {ppl, accuracy, ece, cost, backbone_cost,
    shares, dispatch}}."""
    rows = {}
    for line in text.splitlines():
        if not line.startswith("exits: |"):
            continue
        cells = [c.strip() for c in line.split("|")[1:]]
        cost, backbone = (float(v) for v in cells[4].split())
        rows[cells[0]] = {"ppl": float(cells[1]), "accuracy": float(cells[2]),
                          "ece": float(cells[3]), "cost": cost, "backbone_cost": backbone,
                          "shares": [float(v) for v in cells[5].split()],
                          "dispatch": float(cells[6])}
    return rows


def run(seed, lam, args):
    folder = f"{args.out}/runs"
    name = f"jei_s{seed}"
    if not os.path.exists(f"{folder}/{name}/checkpoint.h5"):
        cmd = mpirun(args.ranks) + [args.bin, "train", "--config", "configs/jei.ini",
                                    "--data.dir", DATA, "--run.seed", str(seed), "--run.name", name,
                                    "--run.results_dir", folder, "--run.overwrite", "true"]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    tag = f"lambda{lam}_{args.kv}" + ("" if args.im_loss == "code" else f"_{args.im_loss}")
    path = f"{folder}/{name}/exits_{tag}.json"
    if not os.path.exists(path):
        cmd = mpirun(args.ranks) + [args.bin, "exits", "--checkpoint",
                                    f"{folder}/{name}/checkpoint.h5", "--lambda", str(lam),
                                    "--batches", str(args.batches), "--kv", args.kv,
                                    "--im_loss", args.im_loss,
                                    "--output", f"{folder}/{name}/exits_{tag}.h5",
                                    "--save", f"{folder}/{name}/exits_{tag}_checkpoint.h5"]
        print("+", " ".join(cmd), flush=True)
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        with open(path, "w") as f:
            json.dump(table(out), f, indent=1)
    with open(path) as f:
        return json.load(f)


def at_cost(rows, cost, key):
    """Thresholding's `key` at `cost`: its points (every threshold and the backbone) interpolated
    linearly in cost; None outside their range."""
    points = sorted((r["cost"], r[key]) for m, r in rows.items()
                    if m.startswith("p_max") or m == "backbone")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if cost < xs[0] or cost > xs[-1]:
        return None
    return float(np.interp(cost, xs, ys))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.02, 0.1, 0.5])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--kv", choices=["propagate", "full"], default="propagate")
    ap.add_argument("--im_loss", choices=["code", "intent"], default="code")
    ap.add_argument("--out", default="results/compare/exits")
    ap.add_argument("--bin", default="build/moetrain")
    args = ap.parse_args()
    os.makedirs(f"{args.out}/runs", exist_ok=True)
    prepare(args.bin)
    lines = ["# JEI-DNN against p_max thresholding at equal cost", "",
             f"`/usr/bin/python3 tools/compare_exits.py --seeds {' '.join(map(str, args.seeds))} "
             f"--lambdas {' '.join(map(str, args.lambdas))} --batches {args.batches} "
             f"--kv {args.kv} --im_loss {args.im_loss}`: configs/jei.ini's backbone per seed on "
             f"{args.ranks} ranks, then `moetrain exits --kv {args.kv} --im_loss {args.im_loss}` "
             f"(defaults: exits after blocks 1, 3 and 5, 400 steps, 200 of them warm-up with "
             f"the per-exit patience 2), scored on {args.batches} batches of the "
             f"test split, {KV[args.kv]}. Thresholding's "
             "perplexity and ECE at JEI's mean cost (JEI's accounting) are interpolated along its "
             "curve over the thresholds 0.1-0.9 and the backbone. Mean ± standard deviation over "
             "the seeds; the verdict as in docs/comparison.md (two standard errors).", "",
             "| λ | JEI cost | JEI ppl | thresholding ppl at that cost | JEI − thresholding | "
             "verdict: JEI lower | JEI ECE | thresholding ECE | JEI exit shares | "
             "JEI experts' rows |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    backbone = []
    for lam in args.lambdas:
        jei, thr, ece, thr_ece, shares, rows_sent = [], [], [], [], [], []
        for seed in args.seeds:
            rows = run(seed, lam, args)
            j = rows["jei"]
            t = at_cost(rows, j["cost"], "ppl")
            if t is None:
                print(f"seed {seed}, lambda {lam}: JEI's cost {j['cost']} is outside "
                      "thresholding's range; left out")
                continue
            jei.append(j["ppl"]), thr.append(t), ece.append(j["ece"])
            thr_ece.append(at_cost(rows, j["cost"], "ece")), shares.append(j["shares"])
            rows_sent.append(j["dispatch"])
            backbone.append(rows["backbone"]["ppl"])
        if len(jei) < 2:
            lines.append(f"| {lam} | | | | | too few seeds in range | | | | |")
            continue
        v, d, se = verdict(jei, thr)
        costs = [run(s, lam, args)["jei"]["cost"] for s in args.seeds]
        share = " / ".join(f"{x:.2f}" for x in np.mean(shares, axis=0))
        lines.append(f"| {lam} | {np.mean(costs):.3f} | {np.mean(jei):.2f} ± {np.std(jei, ddof=1):.2f} "
                     f"| {np.mean(thr):.2f} ± {np.std(thr, ddof=1):.2f} | {d:+.2f} ± {se:.2f} | {v} "
                     f"| {np.mean(ece):.4f} | {np.mean(thr_ece):.4f} | {share} "
                     f"| {np.mean(rows_sent):.3f} |")
    lines += ["", f"The backbone alone: test perplexity {np.mean(backbone):.2f} at cost 1."]
    suffix = ("" if args.kv == "propagate" else "_full") + \
        ("" if args.im_loss == "code" else "_intent")
    with open(f"{args.out}/table{suffix}.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
