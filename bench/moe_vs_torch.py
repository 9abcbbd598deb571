#!/usr/bin/python3
"""MoE layer forward+backward tokens/s: moetrain against a dense FFN of the same active FLOPs
(measured by `moetrain bench moe`) and against a PyTorch MoE layer of the same shape, in one run.

The PyTorch layer is the usual eager implementation: router, softmax, top-1 (Switch) with
per-group capacity in token order, a loop over experts with index_select / index_add_, combine
weighted by the gate probability. On CPU it runs on the OpenMP OpenBLAS (its fastest set-up
here, see bench/step_vs_torch.py). With --device cuda both run on the GPU (PyTorch only where it
was built with CUDA), and moetrain also reports the FLOP rate of its expert GEMMs inside the
layer and alone (raw cuBLAS on the same shapes). Lines are appended to
results/bench/moe_vs_torch.md (CPU) or results/bench/moe_gpu.md (GPU).

usage: /usr/bin/python3 bench/moe_vs_torch.py [--config configs/demo_moe.ini] [--steps 10]
                                              [--device cpu|cuda] [--precision fp32|bf16]
"""
import argparse
import configparser
import datetime
import json
import math
import os
import subprocess
import sys
import time


def torch_moe_seconds(cfg, steps, threads, device):
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        return None, 0, torch.__version__
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m, moe, tr = cfg["model"], cfg["moe"], cfg["train"]
    B, T, d = int(tr["batch_size"]), int(m["seq_len"]), int(m["d_model"])
    f = int(moe.get("d_ff", "0")) or int(m["d_ff"])
    E, cf = int(moe["experts"]), float(moe.get("capacity_factor", "1.25"))
    group = int(moe.get("group_sequences", "1")) * T
    N = B * T
    dev = torch.device(device)
    wg = (0.02 * torch.randn(d, E, device=dev)).requires_grad_()
    w1 = (0.02 * torch.randn(E, d, f, device=dev)).requires_grad_()
    b1 = torch.zeros(E, f, device=dev).requires_grad_()
    w2 = (0.02 * torch.randn(E, f, d, device=dev)).requires_grad_()
    b2 = torch.zeros(E, d, device=dev).requires_grad_()
    x = torch.randn(N, d, device=dev, requires_grad=True)
    dy = torch.randn(N, d, device=dev)
    cap = math.ceil(cf * group / E)

    def layer():
        p = torch.softmax(x @ wg, dim=-1)
        g, e = p.max(dim=-1)
        onehot = torch.nn.functional.one_hot(e, E).view(N // group, group, E)
        pos = (onehot.cumsum(dim=1) * onehot).sum(-1).view(N) - 1  # slot in the group, token order
        keep = pos < cap
        y = torch.zeros(N, d, device=dev)
        for k in range(E):
            idx = torch.nonzero((e == k) & keep).squeeze(1)
            if idx.numel() == 0:
                continue
            h = torch.nn.functional.gelu(x.index_select(0, idx) @ w1[k] + b1[k], approximate="tanh")
            y = y.index_add(0, idx, (h @ w2[k] + b2[k]) * g.index_select(0, idx).unsqueeze(1))
        f_e = torch.nn.functional.one_hot(e, E).float().mean(0)
        aux = 0.01 * E * (f_e * p.mean(0)).sum()
        return y, aux

    best = 1e30
    for s in range(steps + 2):
        for t in (wg, w1, b1, w2, b2, x):
            t.grad = None
        t0 = time.perf_counter()
        y, aux = layer()
        torch.autograd.backward([y, aux], [dy, torch.tensor(1.0, device=dev)])
        if device == "cuda":
            torch.cuda.synchronize()
        if s >= 2:
            best = min(best, time.perf_counter() - t0)
    return best, N, torch.__version__


def append_row(path, intro, columns, cells):
    """Appends a dated row to a markdown table, writing the intro and header to a new file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    new = not os.path.exists(path)
    with open(path, "a") as fh:
        if new:
            fh.write(f"{intro}\n\n| date | {' | '.join(columns)} |\n|{'---|' * (len(columns) + 1)}\n")
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        fh.write(f"| {stamp} | {' | '.join(str(c) for c in cells)} |\n")


def report_gpu(args, ours, torch_tps, version):
    print(f"MoE layer on the GPU ({args.precision}): {ours['tokens']} tokens, d={ours['d']}, "
          f"f={ours['f']}, {ours['experts']} experts, {ours['gate']} gate, forward + backward "
          f"(best of {args.steps})")
    print(f"{'moetrain MoE layer':<34}{ours['moe_s'] * 1e3:8.2f} ms {ours['moe_tokens_per_s']:10.0f} tok/s")
    print(f"{'moetrain dense FFN (same FLOPs)':<34}{ours['ffn_s'] * 1e3:8.2f} ms "
          f"{ours['ffn_tokens_per_s']:10.0f} tok/s   MoE/dense = {ours['ratio']:.2f}")
    print(f"expert GEMMs: {ours['expert_gemm_tflops_in_layer']:.2f} TFLOP/s inside the layer, "
          f"{ours['expert_gemm_tflops_raw']:.2f} TFLOP/s alone on the same shapes (cuBLAS)")
    if torch_tps:
        print(f"{'pytorch MoE layer':<34}{ours['tokens'] / torch_tps * 1e3:8.2f} ms {torch_tps:10.0f} "
              f"tok/s   moetrain/pytorch = {ours['moe_tokens_per_s'] / torch_tps:.2f}x   (torch {version})")
    else:
        print(f"PyTorch {version} has no CUDA here: its MoE layer was not run")
    append_row("results/bench/moe_gpu.md",
               "Written by `/usr/bin/python3 bench/moe_vs_torch.py --device cuda` (best of the timed runs).",
               ["config", "precision", "moetrain MoE tok/s", "dense FFN tok/s",
                "expert GEMM TFLOP/s in layer", "same GEMMs alone", "pytorch MoE tok/s"],
               [args.config, args.precision, f"{ours['moe_tokens_per_s']:.0f}",
                f"{ours['ffn_tokens_per_s']:.0f}", f"{ours['expert_gemm_tflops_in_layer']:.2f}",
                f"{ours['expert_gemm_tflops_raw']:.2f}",
                f"{torch_tps:.0f}" if torch_tps else "not run (no CUDA torch)"])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/demo_moe.ini")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--moetrain", default="build/moetrain")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--torch_only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cfg = configparser.ConfigParser(inline_comment_prefixes=("#",))
    cfg.read(args.config)
    if args.torch_only:
        print(json.dumps(torch_moe_seconds(cfg, args.steps, args.threads, args.device)))
        return 0
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads))
    out = subprocess.run([args.moetrain, "bench", "moe", "--config", args.config, "--steps",
                          str(args.steps), "--dist.ep_size", "1", "--device", args.device,
                          "--train.precision", args.precision],
                         check=True, capture_output=True, text=True, env=env).stdout
    ours = json.loads(out.strip().splitlines()[-1])
    child = subprocess.run([sys.executable, __file__, "--torch_only", "--config", args.config,
                            "--steps", str(args.steps), "--threads", str(args.threads),
                            "--device", args.device],
                           check=True, capture_output=True, text=True,
                           env=dict(env, LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu/openblas-openmp"))
    t_torch, tokens, version = json.loads(child.stdout.strip().splitlines()[-1])
    if args.device == "cuda":
        return report_gpu(args, ours, t_torch and tokens / t_torch, version)
    torch_tps = tokens / t_torch
    print(f"MoE layer: {tokens} tokens, d={ours['d']}, f={ours['f']}, {ours['experts']} experts, "
          f"{ours['gate']} gate, {args.threads} threads, forward + backward (best of {args.steps})")
    print(f"{'moetrain MoE layer':<34}{ours['moe_s'] * 1e3:8.1f} ms {ours['moe_tokens_per_s']:9.0f} tok/s")
    print(f"{'moetrain dense FFN (same FLOPs)':<34}{ours['ffn_s'] * 1e3:8.1f} ms "
          f"{ours['ffn_tokens_per_s']:9.0f} tok/s   MoE/dense = {ours['ratio']:.2f}")
    print(f"{'pytorch MoE layer':<34}{t_torch * 1e3:8.1f} ms {torch_tps:9.0f} tok/s   "
          f"moetrain/pytorch = {ours['moe_tokens_per_s'] / torch_tps:.2f}x   (torch {version})")
    append_row("results/bench/moe_vs_torch.md",
               "Written by `/usr/bin/python3 bench/moe_vs_torch.py` (best of the timed runs).",
               ["config", "threads", "moetrain MoE tok/s", "dense FFN tok/s", "MoE/dense",
                "pytorch MoE tok/s", "moetrain/pytorch"],
               [args.config, args.threads, f"{ours['moe_tokens_per_s']:.0f}",
                f"{ours['ffn_tokens_per_s']:.0f}", f"{ours['ratio']:.2f}", f"{torch_tps:.0f}",
                f"{ours['moe_tokens_per_s'] / torch_tps:.2f}"])

if __name__ == "__main__":
    sys.exit(main())
