#!/usr/bin/python3
"""Plots moetrain results files (results/<run>/results.h5) as PNGs:
  curves.png      training loss and validation perplexity of every run given, against step;
  load_<run>.png  per-expert load of each MoE block over the steps (a heat map, tokens whose first
                  choice is the expert, as a share of the block's tokens);
  a2a_<run>.png   the share of each step's time spent in the token all-to-all.

usage: /usr/bin/python3 tools/plot_results.py RESULTS.h5 [RESULTS.h5 ...] [--out DIR]
"""
import argparse
import os
import sys

import h5py
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def run_name(path):
    return os.path.basename(os.path.dirname(os.path.abspath(path)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    written = []

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for path in args.files:
        with h5py.File(path, "r", swmr=True) as f:  # also a run still writing it
            if f.attrs.get("format") not in (b"moetrain-results", "moetrain-results"):
                sys.exit(f"plot_results: {path} is not a moetrain results file")
            name = run_name(path)
            ax1.plot(f["train/step"][()] + 1, f["train/loss"][()], lw=0.8, label=name)
            if "valid/ppl" in f and len(f["valid/ppl"]):  # declared up front: may be empty
                ax2.plot(f["valid/step"][()] + 1, f["valid/ppl"][()], marker="o", label=name)
            blocks = sorted(k for k in f.get("routing", {}).keys())
            if blocks and len(f["train/step"]):
                fig_l, axes = plt.subplots(len(blocks), 1, figsize=(10, 2.2 * len(blocks)),
                                           squeeze=False)
                for ax, block in zip(axes[:, 0], blocks):
                    load = f[f"routing/{block}/load"][()]
                    share = load / np.maximum(load.sum(axis=1, keepdims=True), 1)
                    im = ax.imshow(share.T, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
                                   extent=[1, load.shape[0] + 1, -0.5, load.shape[1] - 0.5])
                    ax.set_ylabel(f"{block}\nexpert")
                    fig_l.colorbar(im, ax=ax, label="share of tokens")
                axes[-1, 0].set_xlabel("step")
                fig_l.suptitle(f"{name}: per-expert load")
                out = os.path.join(args.out, f"load_{name}.png")
                fig_l.savefig(out, dpi=110, bbox_inches="tight")
                plt.close(fig_l)
                written.append(out)
            step_s, a2a_s = f["train/step_s"][()], f["train/a2a_s"][()]
            if a2a_s.any():
                fig_a, ax = plt.subplots(figsize=(8, 3.5))
                ax.plot(f["train/step"][()] + 1, 100 * a2a_s / step_s, lw=0.8)
                ax.set_xlabel("step")
                ax.set_ylabel("all-to-all share of step time (%)")
                ax.set_title(f"{name}: mean {100 * a2a_s.sum() / step_s.sum():.1f}%")
                out = os.path.join(args.out, f"a2a_{name}.png")
                fig_a.savefig(out, dpi=110, bbox_inches="tight")
                plt.close(fig_a)
                written.append(out)
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss")
    ax2.set_xlabel("step")
    ax2.set_ylabel("validation perplexity")
    ax2.set_yscale("log")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    out = os.path.join(args.out, "curves.png")
    fig.savefig(out, dpi=110, bbox_inches="tight")
    written.append(out)
    print("\n".join(f"plot_results: wrote {w}" for w in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
