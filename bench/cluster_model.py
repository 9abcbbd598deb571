#!/usr/bin/python3
"""A latency-bandwidth model of the token exchange, fitted to bench/cluster.sh's measurements
and projected to large GPU clusters.

Per exchange of m bytes to every peer on P = N x G ranks (N nodes of G ranks):
  flat          P - 1 messages (G - 1 inside the node, P - G between nodes); each node's link
                carries G m (P - G) bytes out; m (G - 1) bytes per rank stay inside the node;
  hierarchical  N - 1 messages between nodes and (slices + 1)(G - 1) inside (the other nodes in
                at most 2 slices, then this node's own rows); the same link bytes; m N (G - 1)
                bytes per rank inside the node (every chunk bound for another node moves once
                more there).
Time = alpha_in x messages inside a node + alpha_out x messages between nodes + link bytes / beta
+ node-internal bytes / gamma, fitted per link rate by non-negative least squares over the flat
and hierarchical rows at every node count, with the message counts `bench a2a` prints (bench
a2a times a dispatch and a combine: two exchanges). The fit ignores the overlap of the
hierarchical exchange's stages, so it charges that exchange the sum.

The projection puts G = 8 GPUs on a node with NVLink 4 (H100 SXM: 18 links of 50 GB/s both ways,
900 GB/s, so 450 GB/s each way; NVIDIA H100 Tensor Core GPU datasheet) and one 400 Gb/s NDR
InfiniBand port per GPU (50 GB/s each way; the DGX H100 User Guide, "Network Modules": eight
ConnectX-7 ports, one per GPU) on a non-blocking fabric. The per-message costs are assumptions,
not published figures: 5 us between nodes, 2 us inside one. Exchanges run as in moetrain: one
message after another is posted; in the hierarchical exchange each slice's transfer between
nodes runs while the next slice and the node's own rows go through the node (one link, so the
slices' transfers follow each other).

usage: /usr/bin/python3 bench/cluster_model.py [results/bench/cluster.md] [--out results/bench]
"""
import argparse
import os
import sys

import numpy as np

G_GPU, NV_BW, IB_BW, NV_ALPHA, IB_ALPHA = 8, 450e9, 50e9, 2e-6, 5e-6
SLICES = 2  # HierarchicalAllToAll::kSlices
D_MODEL = 256  # configs/demo_moe.ini, whose exchanges bench/cluster.sh times
# Per-GPU bytes of one exchange: tokens x choices x d_model x 2 (bf16).
WORKLOADS = {"4k tokens, top-1, d 2048": 4096 * 1 * 2048 * 2,
             "8k tokens, top-2, d 4096": 8192 * 2 * 4096 * 2}
NODES = (16, 32, 64, 128, 256, 512)


def features(kind, n, g, m, messages, between):
    """[messages inside a node, between nodes, node link bytes, node-internal bytes per rank] of
    one exchange."""
    p = n * g
    inside = m * (g - 1) if kind == "flat" else m * n * (g - 1)
    return [messages - between, between, g * m * (p - g), inside]


def nnls(x, y):
    """min |x c - y| over c >= 0, by trying every set of free coefficients (4 of them here)."""
    best, cost = np.zeros(x.shape[1]), float(np.sum(y * y))
    for mask in range(1, 1 << x.shape[1]):
        cols = [i for i in range(x.shape[1]) if mask >> i & 1]
        c, *_ = np.linalg.lstsq(x[:, cols], y, rcond=None)
        if (c >= 0).all():
            full = np.zeros(x.shape[1])
            full[cols] = c
            r = float(np.sum((x @ full - y) ** 2))
            if r < cost:
                best, cost = full, r
    return best


def fit(rows):
    """alpha_in, alpha_out (s/message), beta (link B/s), gamma (node-internal B/s; inf where the
    fit leaves those bytes no cost) and the relative errors, from the a2a rows of a rate."""
    x, y = [], []
    for r in rows:
        for kind in ("flat", "hier"):
            x.append(features(kind, r["nodes"], r["ranks_per_node"], r["bytes_per_peer"],
                              r[f"{kind}_messages"], r[f"{kind}_between"]))
            y.append(r[f"{kind}_ms"] / 1e3 / 2)  # one exchange of the pair
    x, y = np.array(x, dtype=float), np.array(y)
    scale = np.maximum(x.max(axis=0), 1e-30)
    coef = nnls(x / scale, y) / scale
    resid = np.abs(x @ coef - y) / y
    inv = lambda c: 1 / c if c > 0 else float("inf")
    return (coef[0], coef[1], inv(coef[2]), inv(coef[3]), float(np.median(resid)),
            float(resid.max()))


def projected(kind, nodes, per_gpu):
    """Seconds of one exchange on `nodes` x 8 GPUs, each sending per_gpu bytes in all."""
    p = nodes * G_GPU
    m = per_gpu / p
    if kind == "flat":  # NVLink and InfiniBand peers at once; every message posted in turn
        return (IB_ALPHA * (p - G_GPU) + NV_ALPHA * (G_GPU - 1)
                + max(m * (p - G_GPU) / IB_BW, m * (G_GPU - 1) / NV_BW))
    # Slices of the other nodes: each through the node (ranks busy), then over the link (one
    # link: transfers queue), the next slice's stage inside the node meanwhile; the own rows last.
    per = -(-(nodes - 1) // SLICES) if nodes > 1 else 1
    busy = link = 0.0
    for first in range(1, nodes, per):
        s = min(nodes, first + per) - first
        busy += NV_ALPHA * (G_GPU - 1) + m * s * (G_GPU - 1) / NV_BW
        link = max(busy, link) + IB_ALPHA * s + m * G_GPU * s / IB_BW
    busy += NV_ALPHA * (G_GPU - 1) + m * (G_GPU - 1) / NV_BW
    return max(busy, link)


def parse(md):
    """The newest bench/cluster.sh section of cluster.md: its stamp, a2a rows and training rows."""
    text = open(md).read()
    start = text.rfind("bench/cluster.sh ")
    if start < 0:
        sys.exit(f"cluster_model: {md} holds no bench/cluster.sh section")
    stamp = text[text.rfind("## ", 0, start) + 3:start].strip()
    a2a, train, link, per_node = [], [], None, None
    for line in text[start:].splitlines():
        if line.startswith("### link "):  # ### link RATE, N nodes x G ranks
            words = line.split()
            link, nodes, per_node = words[2].rstrip(","), int(words[3]), int(words[6])
        elif line.startswith("a2a: "):
            counts = line.split("messages per rank per exchange: ")[1].split(";")
            flat_m, hier_m = (int(m.split()[-1]) for m in counts[0].split(","))
            # Between nodes (printed since the overlap); before, all are counted as between.
            flat_b, hier_b = ((int(m.split()[-1]) for m in counts[1].split(":")[1].split(","))
                              if len(counts) > 1 else (flat_m, hier_m))
        elif line.startswith("run ("):
            link = line[5:line.index(",")]
        elif line.split() and line.split()[0].isdigit() and len(line.split()) == 9:
            tokens, _, raw, _, _, _, _, flat, hier = line.split()
            ranks = nodes * per_node
            a2a.append({"rate": link, "nodes": nodes, "ranks_per_node": per_node,
                        "bytes_per_peer": int(tokens) // ranks * D_MODEL * 4, "raw_ms": float(raw),
                        "flat_ms": float(flat), "hier_ms": float(hier),
                        "flat_messages": flat_m, "hier_messages": hier_m,
                        "flat_between": flat_b, "hier_between": hier_b})
        elif line.startswith(("switch ", "gd ")):
            *name, step_ms, link_mb, a2a_mb = line.split()
            train.append({"rate": link, "variant": " ".join(name), "step_ms": float(step_ms),
                          "link_bytes_per_step": float(link_mb) * 1e6,
                          "rank0_a2a_bytes_per_step": float(a2a_mb) * 1e6})
    return stamp, a2a, train


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("md", nargs="?", default="results/bench/cluster.md")
    ap.add_argument("--out", default="results/bench")
    args = ap.parse_args()
    stamp, a2a, train = parse(args.md)
    out = [f"### Model and projection (bench/cluster_model.py, measurements of {stamp})", ""]
    out += ["Fitted per link rate (one exchange = alpha_in x messages inside a node + alpha_out x "
            "messages between nodes + link bytes / beta + node-internal bytes / gamma; "
            "non-negative):", "",
            "| link | alpha_in (us/message) | alpha_out (us/message) | beta (link, MB/s) | "
            "gamma (in the node, MB/s) | median error | max error |",
            "|---|---|---|---|---|---|---|"]
    for rate in dict.fromkeys(r["rate"] for r in a2a):
        a_in, a_out, b, g, med, worst = fit([r for r in a2a if r["rate"] == rate])
        gamma = f"{g / 1e6:.0f}" if g < float("inf") else "none left (0 s/byte)"
        out.append(f"| {rate} | {a_in * 1e6:.0f} | {a_out * 1e6:.0f} | {b / 1e6:.0f} | {gamma} | "
                   f"{100 * med:.0f}% | {100 * worst:.0f}% |")
    if train:
        out += ["", "The MoE demo on 2 nodes x 2 ranks (step time; bytes that crossed the links "
                "per step, gradient all-reduce included):", "",
                "| link | run | step ms | vs Switch | link MB/step | vs Switch |",
                "|---|---|---|---|---|---|"]
        for r in train:
            base = next(s for s in train if s["rate"] == r["rate"] and s["variant"] == "switch")
            out.append(f"| {r['rate']} | {r['variant']} | {r['step_ms']:.0f} | "
                       f"{r['step_ms'] / base['step_ms']:.2f} | {r['link_bytes_per_step'] / 1e6:.1f} | "
                       f"{r['link_bytes_per_step'] / base['link_bytes_per_step']:.2f} |")
    out += ["", f"Projected to N nodes x {G_GPU} GPUs (NVLink 4, one NDR port per GPU; per-message "
            f"costs assumed {IB_ALPHA * 1e6:.0f} us between and {NV_ALPHA * 1e6:.0f} us inside nodes); "
            "one exchange, ms; Gating Dropout at p skips a layer's exchanges on a share p of the "
            "steps, saving p x the exchange time:", "",
            "| workload (per GPU) | nodes | bytes/peer | flat ms | hierarchical ms | flat/hier | "
            "saved by GD p=0.2, ms |", "|---|---|---|---|---|---|---|"]
    curves = {}
    for name, per_gpu in WORKLOADS.items():
        for n in NODES:
            f, h = projected("flat", n, per_gpu), projected("hier", n, per_gpu)
            curves.setdefault(name, []).append(f / h)
            out.append(f"| {name} | {n} | {per_gpu / (n * G_GPU) / 1e3:.1f} KB | {f * 1e3:.2f} | "
                       f"{h * 1e3:.2f} | {f / h:.2f} | {0.2 * min(f, h) * 1e3:.2f} |")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for name, ratios in curves.items():
            ax.plot(NODES, ratios, marker="o", label=name)
        ax.axhline(1, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(NODES, [str(n) for n in NODES])
        ax.set_xlabel(f"nodes ({G_GPU} GPUs each)")
        ax.set_ylabel("flat / hierarchical time")
        ax.set_title("projected all-to-all: above 1, hierarchical wins")
        ax.grid(alpha=0.3)
        ax.legend()
        png = os.path.join(args.out, "cluster_projection.png")
        fig.savefig(png, dpi=110, bbox_inches="tight")
        out += ["", f"![flat over hierarchical, projected]({os.path.basename(png)})"]
    except ImportError:
        pass
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
