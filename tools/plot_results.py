#!/usr/bin/python3
"""Plots moetrain results files (results/<run>/results.h5) as PNGs:
  curves.png      of every run given, against step: the training cross-entropy, the validation
                  perplexity (log axis) and, for MoE runs, the share of (token, choice) pairs that
                  capacity dropped; training curves smoothed over their faint raw values;
  load_<run>.png  per-expert load of each MoE block over the steps: the share of the block's
                  tokens whose first choice is the expert, all blocks on one colour scale centred
                  on the balanced share 1/E;
  a2a_<run>.png   the share of each step's time spent in the token all-to-all.
Runs are named by the shortest end of their folder's path that tells them apart.

usage: /usr/bin/python3 tools/plot_results.py RESULTS.h5 [RESULTS.h5 ...] [--out DIR] [--smooth A]
"""
import argparse
import math
import os
import sys

import h5py
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402


def run_labels(paths):
    """The shortest end of each file's folder path that no other file's folder ends with."""
    parts = [os.path.dirname(os.path.abspath(p)).strip(os.sep).split(os.sep) for p in paths]
    labels = []
    for p in parts:
        n = 1
        while n < len(p) and any(q[-n:] == p[-n:] for q in parts if q != p):
            n += 1
        labels.append("/".join(p[-n:]))
    return [f"{label} ({labels[:i].count(label) + 1})" if labels.count(label) > 1 else label
            for i, label in enumerate(labels)]  # the same folder given twice


def smooth(values, alpha):
    """TensorBoard's smoothing: an exponential moving average, debiased at the start."""
    out, avg = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        avg = alpha * avg + (1 - alpha) * v
        out[i] = avg / (1 - alpha ** (i + 1))
    return out


def log_ticks(lo, hi):
    """Plain-number ticks for a log axis over [lo, hi]: 1-2-5 steps, every digit if those are
    fewer than 3, evenly spaced round numbers on a narrower range."""
    for digits in ((1, 2, 5), tuple(range(1, 10))):
        ticks = [m * 10 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                 for m in digits if lo <= m * 10 ** e <= hi]
        if len(ticks) >= 3:
            return ticks
    return [t for t in MaxNLocator(4).tick_values(lo, hi) if lo <= t <= hi]


def log_axis(ax):
    lo, hi = ax.get_ylim()
    ax.yaxis.set_major_locator(FixedLocator(log_ticks(lo, hi)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def drop_share(f):
    """Per step: dropped over routed (token, choice) pairs, all MoE blocks together (None: dense)."""
    blocks = [f"routing/{b}" for b in f.get("routing", {}).keys()]
    if not blocks or any(f"{b}/choices" not in f for b in blocks):
        return None
    dropped = sum(f[f"{b}/dropped"][()] for b in blocks)
    return dropped / np.maximum(sum(f[f"{b}/choices"][()] for b in blocks), 1)


def plot_load(f, label):
    """The blocks' load heat maps on one colour scale (diverging at 1/E)."""
    blocks = sorted(f["routing"].keys(), key=lambda b: int(b.removeprefix("block")))
    shares = []
    for block in blocks:
        load = f[f"routing/{block}/load"][()]
        shares.append(load / np.maximum(load.sum(axis=1, keepdims=True), 1))
    experts = shares[0].shape[1]
    norm = TwoSlopeNorm(vmin=0, vcenter=1 / experts, vmax=max(2 / experts, *(s.max() for s in shares)))
    steps = f["train/step"][()] + 1
    fig, axes = plt.subplots(len(blocks), 1, figsize=(10, 0.6 + 1.8 * len(blocks)), squeeze=False,
                             sharex=True)
    for ax, block, share in zip(axes[:, 0], blocks, shares):
        im = ax.imshow(share.T, aspect="auto", origin="lower", cmap="RdBu_r", norm=norm,
                       interpolation="nearest", extent=[steps[0], steps[-1] + 1, -0.5, experts - 0.5])
        ax.set_ylabel(f"{block}\nexpert")
    axes[-1, 0].set_xlabel("step")
    bar = fig.colorbar(im, ax=axes[:, 0].tolist(), label="share of the block's tokens")
    bar.set_ticks(sorted({0, 1 / experts, norm.vmax}))
    bar.set_ticklabels([f"{t:.2f}" if t != 1 / experts else f"1/E = {t:.2f}"
                        for t in sorted({0, 1 / experts, norm.vmax})])
    fig.suptitle(f"{label}: per-expert load (white: balanced)")
    return fig


def plot_a2a(f, label):
    step_s, a2a_s = f["train/step_s"][()], f["train/a2a_s"][()]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(f["train/step"][()] + 1, 100 * a2a_s / step_s, lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("all-to-all share of step time (%)")
    ax.set_title(f"{label}: mean {100 * a2a_s.sum() / step_s.sum():.1f}%")
    return fig


def open_results(path):
    f = h5py.File(path, "r", swmr=True)  # also a run still writing it
    if f.attrs.get("format") not in (b"moetrain-results", "moetrain-results"):
        sys.exit(f"plot_results: {path} is not a moetrain results file")
    return f


def plot_curves(files, labels, alpha):
    """Every run's training cross-entropy, validation perplexity and dropped share."""
    fig, (ax_ce, ax_ppl, ax_drop) = plt.subplots(1, 3, figsize=(16, 4.5))
    for f, label in zip(files, labels):
        steps = f["train/step"][()] + 1
        ce = f["train/ce" if "train/ce" in f else "train/loss"][()]
        line, = ax_ce.plot(steps, smooth(ce, alpha), lw=1.2, label=label)
        color = line.get_color()
        if alpha > 0:
            ax_ce.plot(steps, ce, lw=0.6, alpha=0.25, color=color)
        if "valid/ppl" in f and len(f["valid/ppl"]):  # declared up front: may be empty
            ax_ppl.plot(f["valid/step"][()] + 1, f["valid/ppl"][()], marker="o", ms=3, color=color)
        share = drop_share(f)
        if share is not None and len(share):
            ax_drop.plot(steps, 100 * smooth(share, alpha), lw=1.2, color=color)
            if alpha > 0:
                ax_drop.plot(steps, 100 * share, lw=0.6, alpha=0.25, color=color)
    ax_ce.set_ylabel("training cross-entropy")
    ax_ppl.set_ylabel("validation perplexity")
    ax_drop.set_ylabel("dropped (token, choice) pairs (%)")
    if ax_ppl.lines:
        ax_ppl.set_yscale("log")
        log_axis(ax_ppl)
    if not ax_drop.lines:
        ax_drop.text(0.5, 0.5, "no dropped pairs recorded", ha="center", va="center",
                     transform=ax_drop.transAxes)
    for ax in (ax_ce, ax_ppl, ax_drop):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3, which="both")
    # One legend under the panels: it covers no curve, and its entries never overlap.
    fig.legend(loc="lower center", ncol=min(4, len(files)), bbox_to_anchor=(0.5, -0.02),
               frameon=False)
    fig.subplots_adjust(bottom=0.12 + 0.05 * math.ceil(len(files) / 4))
    return fig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--out", default=".")
    ap.add_argument("--smooth", type=float, default=0.9,
                    help="weight of the moving average of the training curves (0: raw only)")
    args = ap.parse_args()
    if not 0 <= args.smooth < 1:
        sys.exit(f"plot_results: --smooth {args.smooth} is not in [0, 1)")
    os.makedirs(args.out, exist_ok=True)
    files, labels = [open_results(p) for p in args.files], run_labels(args.files)
    figures = {"curves": plot_curves(files, labels, args.smooth)}
    for f, label in zip(files, labels):
        name = label.replace("/", "_").replace(" ", "_")
        if "routing" in f and len(f["routing"]) and len(f["train/step"]):
            figures[f"load_{name}"] = plot_load(f, label)
        if f["train/a2a_s"][()].any():
            figures[f"a2a_{name}"] = plot_a2a(f, label)
    for name, fig in figures.items():
        out = os.path.join(args.out, f"{name}.png")
        fig.savefig(out, dpi=110, bbox_inches="tight")
        plt.close(fig)
        print(f"plot_results: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
