#!/usr/bin/python3
"""Trains every routing method on the bundled corpus at equal steps and equal active FLOPs, two
seeds each, and writes a table (validation perplexity, tokens/s, all-to-all bytes per step) as
markdown and HDF5, plus a PNG of the validation curves.

Each method is its config in configs/ (dense: demo.ini; Switch: demo_moe.ini; gshard, hash,
thor, switch_gd, evomoe), all with the same size overrides below, on the same ranks. Experts are
as wide as the dense FFN, so a token's active FLOPs match the dense model's, except GShard's
(two experts per token), THOR's (two passes per step) and EvoMoE's dense-to-sparse phase (up to
E experts per token); the table says so.

usage: /usr/bin/python3 tools/compare_methods.py [--steps 300] [--ranks 2] [--seeds 1 2]
                                                [--out results/compare]
"""
import argparse
import os
import subprocess
import sys

import h5py
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METHODS = [  # (name, config, note on active FLOPs per token)
    ("dense", "configs/demo.ini", "1 FFN"),
    ("switch", "configs/demo_moe.ini", "1 expert"),
    ("gshard", "configs/gshard.ini", "2 experts (2x FFN FLOPs in MoE blocks)"),
    ("hash", "configs/hash.ini", "1 expert"),
    ("thor", "configs/thor.ini", "1 expert, 2 passes per step (2x step FLOPs)"),
    ("switch_gd", "configs/switch_gd.ini", "1 expert"),
    ("evomoe", "configs/evomoe.ini", "1 expert; up to 8 while the gate is dense"),
]
SIZE = ["--model.seq_len", "64", "--model.d_model", "128", "--model.n_layer", "4",
        "--model.n_head", "4", "--model.d_ff", "512", "--train.batch_size", "16",
        "--train.eval_batches", "50", "--train.log_every", "50"]


def run(name, config, seed, steps, ranks, out):
    run_name = f"{name}_s{seed}"
    mpi = ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none",
           "-x", "OMP_NUM_THREADS=1", "-x", "OMPI_MCA_mpi_yield_when_idle=1"]
    if os.geteuid() == 0:
        mpi.append("--allow-run-as-root")
    cmd = mpi + ["build/moetrain", "train", "--config", config, *SIZE, "--train.steps", str(steps),
                 "--train.warmup", str(max(1, steps // 10)), "--train.eval_every",
                 str(max(1, steps // 6)), "--run.seed", str(seed), "--run.name", run_name,
                 "--run.results_dir", out + "/runs"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with h5py.File(f"{out}/runs/{run_name}/results.h5") as f:
        return {"valid_step": f["valid/step"][()], "valid_ppl": f["valid/ppl"][()],
                "tokens_per_s": float(np.median(f["train/tokens_per_s"][()])),
                "a2a_bytes": float(np.mean(f["train/a2a_bytes"][()]))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default="results/compare")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    results = {name: [run(name, cfg, s, args.steps, args.ranks, args.out) for s in args.seeds]
               for name, cfg, _ in METHODS}

    lines = [f"# Routing methods compared ({args.steps} steps x 1024 tokens, {args.ranks} ranks, "
             f"seeds {args.seeds})", "",
             f"Command: `/usr/bin/python3 tools/compare_methods.py --steps {args.steps} "
             f"--ranks {args.ranks} --seeds {' '.join(map(str, args.seeds))}`. Model: d=128, "
             "4 blocks (2 MoE blocks of 8 experts, each as wide as the dense FFN, 512), context 64, "
             "batch 16; validation on 50 x 16 windows of the validation split.", "",
             "| method | valid ppl (per seed) | mean | tokens/s (median step) | a2a bytes/step "
             "(rank 0) | active FLOPs per token |", "|---|---|---|---|---|---|"]
    with h5py.File(f"{args.out}/compare.h5", "w") as h:
        h.attrs["steps"], h.attrs["ranks"], h.attrs["seeds"] = args.steps, args.ranks, args.seeds
        for name, _, note in METHODS:
            rs = results[name]
            final = [r["valid_ppl"][-1] for r in rs]
            lines.append(f"| {name} | {' / '.join(f'{p:.2f}' for p in final)} | "
                         f"{np.mean(final):.2f} | {np.mean([r['tokens_per_s'] for r in rs]):.0f} | "
                         f"{np.mean([r['a2a_bytes'] for r in rs]):.0f} | {note} |")
            g = h.create_group(name)
            g["final_valid_ppl"] = np.array(final)
            g["tokens_per_s"] = np.array([r["tokens_per_s"] for r in rs])
            g["a2a_bytes_per_step"] = np.array([r["a2a_bytes"] for r in rs])
            g["valid_step"] = rs[0]["valid_step"]
            g["valid_ppl"] = np.stack([r["valid_ppl"] for r in rs])
    with open(f"{args.out}/table.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

    plt.figure(figsize=(8, 5))
    for name, _, _ in METHODS:
        rs = results[name]
        plt.plot(rs[0]["valid_step"] + 1, np.mean([r["valid_ppl"] for r in rs], axis=0), marker="o",
                 label=name)
    plt.yscale("log")
    plt.xlabel("step")
    plt.ylabel(f"validation perplexity (mean of {len(args.seeds)} seeds)")
    plt.title("Routing methods on the bundled corpus")
    plt.legend()
    plt.grid(alpha=0.3)
    plt.savefig(f"{args.out}/valid_curves.png", dpi=120, bbox_inches="tight")
    return 0


if __name__ == "__main__":
    sys.exit(main())
