#!/usr/bin/python3
"""moetrain's training step against the PyTorch a user would pick today, interleaved in one run.

Models: `dense` (configs/demo.ini), `moe` (configs/demo_moe.ini on one rank, Switch top-1,
dropless on both sides) and `large` (demo.ini with d_model 512, 6 layers, seq_len 256). Each
trains on random tokens with AdamW and global-norm clipping, on the same threads. Peers, each a
process of its own that stays up between rounds (so torch.compile compiles once): the newest
torch from PyPI in a venv under build/ (made on first use; a benchmark tool, not a dependency of
the trainer) as eager fp32, torch.compile fp32, eager bf16 autocast and compiled bf16, and
Debian's python3-torch eager fp32 for reference. moetrain runs in fp32 and, where the CPU has
AVX512_BF16, with train.precision = bf16. Every round runs moetrain and then each peer for
--steps steps, one at a time; a peer is stopped (SIGSTOP) while it waits, and inductor compiles
in-process, so nothing else runs beside the one measured. A variant's figure is the median of its
rounds' median step times.

Printed per model: tokens/s and ms/step of each, moetrain / each peer, moetrain / the fastest
peer, and for each moetrain precision its GEMM-bound fraction (its step's GEMMs, recorded in one step and each run alone
on the same shape, over the step time; the step's FLOPs over that time is the GEMM rate), the
GEMMs it ran on the whole pool timed inside the step against alone, and the peak resident memory
of each process. Lines are appended to results/bench/step_vs_torch.md.

usage: /usr/bin/python3 bench/step_vs_torch.py [--models dense,moe,large] [--steps 8]
           [--rounds 3] [--threads 2] [--moetrain build/moetrain] [--venv build/torch-venv]
"""
import argparse
import configparser
import datetime
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import time

MODELS = {
    "dense": ("configs/demo.ini", []),
    "moe": ("configs/demo_moe.ini", ["--moe.dropless", "true"]),
    "large": ("configs/demo.ini", ["--model.d_model", "512", "--model.n_layer", "6",
                                   "--model.seq_len", "256"]),
}
PEERS = [  # name, interpreter ("venv" or "debian"), compiled, bf16
    ("torch eager fp32", "venv", False, False),
    ("torch.compile fp32", "venv", True, False),
    ("torch eager bf16 autocast", "venv", False, True),
    ("torch.compile bf16 autocast", "venv", True, True),
    ("Debian torch eager fp32", "debian", False, False),
]


def dims(config, overrides, vocab):
    """The model's sizes from the INI file and --section.key overrides (what moetrain reads)."""
    cfg = configparser.ConfigParser(inline_comment_prefixes=("#",))
    cfg.read(config)
    for key, value in zip(overrides[::2], overrides[1::2]):
        section, name = key[2:].split(".")
        cfg.setdefault(section, {})
        cfg[section][name] = value
    m, t = cfg["model"], cfg["train"]
    moe = cfg["moe"] if cfg.has_section("moe") else {}
    return dict(T=int(m["seq_len"]), d=int(m["d_model"]), L=int(m["n_layer"]),
                H=int(m["n_head"]), f=int(m["d_ff"]), B=int(t["batch_size"]), V=vocab,
                E=int(moe.get("experts", 0)), every=int(moe.get("every", 1)),
                f_moe=int(moe.get("d_ff", 0)) or int(m["d_ff"]),
                aux=float(moe.get("aux_weight", 0)), z=float(moe.get("z_weight", 0)),
                dropless=moe.get("dropless", "false") == "true")


def activations_mb(D):
    """What one micro-batch's backward must keep, in MB of fp32: per block the input and output
    of each LayerNorm, qkv, the attention probabilities, the attention output, the FFN's (or an
    expert's) two hidden layers; the final LayerNorm and the logits."""
    per_token = D["L"] * (8 * D["d"] + 2 * D["f"] + D["H"] * D["T"]) + 2 * D["d"] + D["V"]
    return 4.0 * D["B"] * D["T"] * per_token / (1 << 20)


def torch_worker(spec):
    """A peer process: builds the model, warms up (compiles), then runs steps on request."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    D = spec["dims"]
    T, d, L, H, f, B, V, E = (D[k] for k in ("T", "d", "L", "H", "f", "B", "V", "E"))
    assert E == 0 or D["dropless"], "the PyTorch MoE here is dropless only"

    class Switch(torch.nn.Module):  # top-1, dropless; balance and router z losses as moetrain's
        def __init__(self):
            super().__init__()
            self.router = torch.nn.Linear(d, E, bias=False)
            self.fc1 = torch.nn.ParameterList(torch.nn.Parameter(0.02 * torch.randn(d, D["f_moe"]))
                                              for _ in range(E))
            self.b1 = torch.nn.Parameter(torch.zeros(E, D["f_moe"]))
            self.fc2 = torch.nn.ParameterList(torch.nn.Parameter(0.02 * torch.randn(D["f_moe"], d))
                                              for _ in range(E))
            self.b2 = torch.nn.Parameter(torch.zeros(E, d))

        def forward(self, x):
            flat = x.reshape(-1, d)
            logits = self.router(flat).float()
            p = logits.softmax(-1)
            g, e = p.max(-1)
            y = torch.zeros_like(flat)
            for k in range(E):
                idx = torch.nonzero(e == k).squeeze(1)
                h = F.gelu(flat.index_select(0, idx) @ self.fc1[k] + self.b1[k], approximate="tanh")
                out = (h @ self.fc2[k] + self.b2[k]) * g.index_select(0, idx).unsqueeze(1)
                y = y.index_add(0, idx, out.to(y.dtype))
            frac = F.one_hot(e, E).float().mean(0)
            aux = D["aux"] * E * (frac * p.mean(0)).sum()
            aux = aux + D["z"] * torch.logsumexp(logits, -1).square().mean()
            return y.view_as(x), aux

    class Block(torch.nn.Module):
        def __init__(self, moe):
            super().__init__()
            self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
            self.qkv, self.proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
            self.moe = Switch() if moe else None
            if not moe:
                self.fc1, self.fc2 = torch.nn.Linear(d, f), torch.nn.Linear(f, d)
            self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

        def forward(self, x):
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
            heads = lambda t: t.view(B, T, H, d // H).transpose(1, 2)
            q, k, v = heads(q), heads(k), heads(v)
            att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d // H))
            att = att.masked_fill(self.mask, float("-inf")).softmax(-1)
            x = x + self.proj((att @ v).transpose(1, 2).reshape(B, T, d))
            if self.moe is None:
                return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh")), 0.0
            y, aux = self.moe(self.ln2(x))
            return x + y, aux

    class Gpt(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = torch.nn.Embedding(V, d)
            self.wpe = torch.nn.Embedding(T, d)
            moe = [E > 0 and (i + 1) % D["every"] == 0 for i in range(L)]
            self.blocks = torch.nn.ModuleList(Block(m) for m in moe)
            self.lnf = torch.nn.LayerNorm(d)

        def forward(self, tokens, targets):
            x = self.wte(tokens) + self.wpe.weight[:T]
            aux = 0.0
            for b in self.blocks:
                x, a = b(x)
                aux = aux + a
            logits = self.lnf(x) @ self.wte.weight.T
            return F.cross_entropy(logits.view(-1, V).float(), targets.view(-1)) + aux

    model = Gpt()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    forward = torch.compile(model) if spec["compiled"] else model

    def step():
        tokens = torch.randint(0, V, (B, T))
        targets = torch.randint(0, V, (B, T))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=spec["bf16"]):
            loss = forward(tokens, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return time.perf_counter() - t0

    for _ in range(3):
        step()
    print(json.dumps({"ready": True, "parameters": params, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        times = [step() for _ in range(int(line))]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"times": times, "peak_rss_mb": rss}), flush=True)


def ensure_venv(venv):
    """The venv with the newest torch from PyPI (about 5 GB with its CUDA wheels), made once."""
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(os.path.join(venv, ".complete")):
        print(f"making {venv} with the newest torch from PyPI (once; a few minutes)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "torch", "numpy"],
                       check=True)
        open(os.path.join(venv, ".complete"), "w").close()
    return python


def start_peer(python, spec, env):
    proc = subprocess.Popen([python, __file__, "--worker", json.dumps(spec)],
                            env=dict(env, TORCHINDUCTOR_COMPILE_THREADS="1"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = json.loads(proc.stdout.readline())
    proc.send_signal(signal.SIGSTOP)
    return proc, ready


def run_peer(proc, steps):
    proc.send_signal(signal.SIGCONT)
    proc.stdin.write(f"{steps}\n")
    proc.stdin.flush()
    reply = json.loads(proc.stdout.readline())
    proc.send_signal(signal.SIGSTOP)
    return reply


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="dense,moe,large")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--moetrain", default="build/moetrain")
    ap.add_argument("--venv", default="build/torch-venv")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        torch_worker(json.loads(args.worker))
        return 0
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    pythons = {"venv": ensure_venv(args.venv), "debian": "/usr/bin/python3"}
    # bf16 where this CPU has AVX512_BF16 (moetrain refuses it otherwise, with the reason).
    probe = subprocess.run([args.moetrain, "bench", "step", "--config", "configs/demo.ini",
                            "--steps", "1", "--train.precision", "bf16"],
                           capture_output=True, text=True, env=env)
    precisions = ["fp32", "bf16"] if probe.returncode == 0 else ["fp32"]
    if probe.returncode != 0:
        print(f"moetrain bf16 left out: {probe.stderr.strip()}")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    rows = []
    for name in args.models.split(","):
        config, overrides = MODELS[name]
        D = dims(config, overrides, args.vocab)
        tokens = D["B"] * D["T"]
        peers = {}
        for peer, interp, compiled, bf16 in PEERS:
            spec = dict(dims=D, threads=args.threads, compiled=compiled, bf16=bf16)
            peers[peer] = start_peer(pythons[interp], spec, env)
        ours_names = [f"moetrain {p}" for p in precisions]
        medians = {k: [] for k in ours_names + list(peers)}
        rss, bound, inside, ours = {}, {k: [] for k in ours_names}, {k: [] for k in ours_names}, {}
        for _ in range(args.rounds):
            for precision, k in zip(precisions, ours_names):
                out = subprocess.run([args.moetrain, "bench", "step", "--config", config,
                                      *overrides, "--steps", str(args.steps), "--vocab",
                                      str(args.vocab), "--train.precision", precision],
                                     check=True, capture_output=True, text=True, env=env).stdout
                ours[k] = json.loads(out.strip().splitlines()[-1])
                medians[k].append(ours[k]["median_step_s"])
                bound[k].append(ours[k]["gemm_alone_s"] / ours[k]["median_step_s"])
                inside[k].append(ours[k]["gemm_outer_alone_s"] / ours[k]["gemm_outer_in_step_s"])
                rss[k] = ours[k]["peak_rss_mb"]
            for peer, (proc, ready) in peers.items():
                assert ready["parameters"] == ours["moetrain fp32"]["parameters"], (peer, ready)
                reply = run_peer(proc, args.steps)
                medians[peer].append(statistics.median(reply["times"]))
                rss[peer] = reply["peak_rss_mb"]
        for proc, _ in peers.values():
            proc.send_signal(signal.SIGCONT)
            proc.stdin.close()
            proc.wait()
        step_s = {k: statistics.median(v) for k, v in medians.items()}
        fastest = min(v for k, v in step_s.items() if k not in ours_names)
        first = ours["moetrain fp32"]
        print(f"\n{name}: {config} {' '.join(overrides)}, {first['parameters']} parameters, "
              f"{tokens} tokens/step, {args.threads} threads, {args.rounds} rounds x "
              f"{args.steps} steps")
        for k, s in step_s.items():
            version = "" if k in ours_names else f" (torch {peers[k][1]['torch']})"
            ratios = [f"{s / step_s[o]:.2f}" for o in ours_names]
            shown = "" if k in ours_names else "   " + ", ".join(
                f"{o}/this = {r}x" for o, r in zip(ours_names, ratios))
            print(f"  {k:<30}{s * 1e3:8.1f} ms/step {tokens / s:8.0f} tok/s "
                  f"{rss[k]:7.0f} MB peak{shown}{version}")
            rows.append(f"| {stamp} | {name} | {k}{version} | {tokens / s:.0f} | {rss[k]:.0f} | "
                        f"{'' if k in ours_names else ' | '.join(ratios)} |\n")
        for k in ours_names:
            b, i, o = statistics.median(bound[k]), statistics.median(inside[k]), ours[k]
            print(f"  {k} / fastest PyTorch = {fastest / step_s[k]:.2f}x; its step at {b:.2f} of "
                  f"its GEMM-bound limit ({o['gemm_flops'] / 1e9:.1f} GFLOP/step, its GEMMs "
                  f"alone at {o['gemm_flops'] / o['gemm_alone_s'] / 1e9:.0f} GFLOP/s in the last "
                  f"round); its GEMMs on the whole pool run inside the step at {i:.2f} of their "
                  f"speed alone (medians over the rounds)")
            rows.append(f"| {stamp} | {name} | {k} / fastest PyTorch | | | {fastest / step_s[k]:.2f} |\n"
                        f"| {stamp} | {name} | {k} GEMM-bound fraction | | | {b:.2f} |\n"
                        f"| {stamp} | {name} | {k} GEMMs inside the step / alone | | | {i:.2f} |\n")
        print(f"  moetrain's peak (fp32) {first['peak_rss_mb']:.0f} MB: parameters, gradients and "
              f"AdamW moments {first['state_mb']:.0f} MB, activation arena "
              f"{first['arena_mb']:.0f} MB (a step uses {first['arena_peak_mb']:.0f} MB of it); "
              f"analytic need {first['state_mb'] + activations_mb(D):.0f} MB (the state and the "
              f"activations the backward reads, {activations_mb(D):.0f} MB)")
    os.makedirs("results/bench", exist_ok=True)
    path = "results/bench/step_vs_torch.md"
    with open(path, "a") as f:
        f.write(f"\n`/usr/bin/python3 bench/step_vs_torch.py --models {args.models} --steps "
                f"{args.steps} --rounds {args.rounds} --threads {args.threads}"
                + (f" --moetrain {args.moetrain}" if args.moetrain != "build/moetrain" else "")
                + f"` ({stamp}; "
                "interleaved rounds; ratio = moetrain's tokens/s, fp32 and bf16, over the row's)\n\n"
                f"| date | model | variant | tok/s | peak MB | {' | '.join(f'{p} ratio' for p in precisions)} |\n"
                f"|---|---|---|---|---|{'---|' * len(precisions)}\n")
        f.writelines(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
