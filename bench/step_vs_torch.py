#!/usr/bin/python3
"""Tokens/s of moetrain's training step against the same model in PyTorch, in one run.

Both train the GPT of the given config (DESIGN.md's contract) on random tokens with AdamW and
global-norm clipping, on the same number of threads; the median step time of each is reported
with the ratio, and the lines are appended to results/bench/step_vs_torch.md. PyTorch runs three
times, each in its own process: as Debian ships it (BLAS through libblas.so.3, the pthread
OpenBLAS), with passive OpenMP waiting (its two thread pools then stop fighting), and on the
OpenMP OpenBLAS that moetrain uses. Compare against the fastest of the three.

usage: /usr/bin/python3 bench/step_vs_torch.py [--config configs/demo.ini] [--steps 10]
                                               [--threads 2] [--moetrain build/moetrain]
"""
import argparse
import configparser
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import time


def torch_step_time(cfg, vocab, steps, threads):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = cfg["model"]
    T, d, L, H, f = (int(m[k]) for k in ("seq_len", "d_model", "n_layer", "n_head", "d_ff"))
    B = int(cfg["train"]["batch_size"])

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
            self.qkv, self.proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
            self.fc1, self.fc2 = torch.nn.Linear(d, f), torch.nn.Linear(f, d)
            self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

        def forward(self, x):
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
            heads = lambda t: t.view(B, T, H, d // H).transpose(1, 2)
            q, k, v = heads(q), heads(k), heads(v)
            att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d // H))
            att = att.masked_fill(self.mask, float("-inf")).softmax(-1)
            x = x + self.proj((att @ v).transpose(1, 2).reshape(B, T, d))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))

    class Gpt(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = torch.nn.Embedding(vocab, d)
            self.wpe = torch.nn.Embedding(T, d)
            self.blocks = torch.nn.ModuleList(Block() for _ in range(L))
            self.lnf = torch.nn.LayerNorm(d)

        def forward(self, tokens, targets):
            x = self.wte(tokens) + self.wpe.weight[:T]
            for b in self.blocks:
                x = b(x)
            logits = self.lnf(x) @ self.wte.weight.T
            return F.cross_entropy(logits.view(-1, vocab), targets.view(-1))

    model = Gpt()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    times = []
    for s in range(3 + steps):
        tokens = torch.randint(0, vocab, (B, T))
        targets = torch.randint(0, vocab, (B, T))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(tokens, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if s >= 3:
            times.append(time.perf_counter() - t0)
    params = sum(p.numel() for p in model.parameters())
    return statistics.median(times), params, B * T, torch.__version__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/demo.ini")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--moetrain", default="build/moetrain")
    ap.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cfg = configparser.ConfigParser(inline_comment_prefixes=("#",))
    cfg.read(args.config)
    if args.torch_only:  # child process: the environment was set by the parent
        print(json.dumps(torch_step_time(cfg, args.vocab, args.steps, args.threads)))
        return 0

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    out = subprocess.run([args.moetrain, "bench", "step", "--config", args.config, "--steps",
                          str(args.steps), "--vocab", str(args.vocab)],
                         check=True, capture_output=True, text=True, env=env).stdout
    ours = json.loads(out.strip().splitlines()[-1])

    variants = {
        "pytorch (Debian default)": {},
        "pytorch (pthread OpenBLAS, passive wait)": {"OMP_WAIT_POLICY": "passive"},
        "pytorch (OpenMP OpenBLAS)": {
            "LD_LIBRARY_PATH": "/usr/lib/x86_64-linux-gnu/openblas-openmp"},
    }
    print(f"model: {args.config}, {ours['parameters']} parameters, "
          f"{ours['tokens_per_step']} tokens/step, {args.threads} threads")
    print(f"{'moetrain':<42}{ours['median_step_s'] * 1e3:8.1f} ms/step "
          f"{ours['tokens_per_s']:8.0f} tok/s")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    rows, best = [], 0.0
    for name, extra in variants.items():
        child = subprocess.run([sys.executable, __file__, "--torch-only", "--config", args.config,
                                "--steps", str(args.steps), "--threads", str(args.threads),
                                "--vocab", str(args.vocab)],
                               check=True, capture_output=True, text=True, env=dict(env, **extra))
        t_torch, params, tokens, version = json.loads(child.stdout.strip().splitlines()[-1])
        assert params == ours["parameters"], f"parameter counts differ: {params} vs {ours}"
        ratio = ours["tokens_per_s"] / (tokens / t_torch)
        print(f"{name:<42}{t_torch * 1e3:8.1f} ms/step {tokens / t_torch:8.0f} tok/s"
              f"   moetrain/pytorch = {ratio:.2f}x   (torch {version})")
        best = max(best, tokens / t_torch)
        rows.append(f"| {stamp} | {args.config} | {args.threads} | {ours['tokens_per_s']:.0f} | "
                    f"{name} | {tokens / t_torch:.0f} | {ratio:.2f} |\n")
    print(f"moetrain / fastest pytorch = {ours['tokens_per_s'] / best:.2f}x")
    os.makedirs("results/bench", exist_ok=True)
    path = "results/bench/step_vs_torch.md"
    new = not os.path.exists(path)
    with open(path, "a") as f:
        if new:
            f.write("Written by `/usr/bin/python3 bench/step_vs_torch.py` (median of the timed steps).\n\n"
                    "| date | config | threads | moetrain tok/s | pytorch variant | pytorch tok/s "
                    "| ratio |\n|---|---|---|---|---|---|---|\n")
        f.writelines(rows)


if __name__ == "__main__":
    sys.exit(main())
