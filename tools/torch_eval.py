#!/usr/bin/python3
"""Computes the validation loss of a moetrain checkpoint with PyTorch, from the public file
layout only: weights by their names, the model rebuilt from the config stored in the file
(dense, or MoE with the switch, gshard or hash gate at evaluation settings: capacity factor
moe.eval_capacity_factor per group of moe.group_sequences sequences, slots claimed in token order,
first choices first; GShard keeps both choices). The windows are the ones `moetrain eval
--batches N` uses, so both print the same loss (float64 here, float32 there).

With --generated "PROMPT IDS | NEW IDS | logprobs L..." (the line `moetrain generate --ids`
prints after "generate: ids") it checks a generation instead: each new token's log-probability
given the last seq_len ids before it within 1e-3 of moetrain's, and with --greedy each new token
the most likely one (within 1e-4 of the largest logit, for float32 rounding there); prints "ok".

With --hf DIR the logits come instead from the Hugging Face model that tools/export_hf.py wrote
to DIR (transformers' AutoModelForCausalLM, trust_remote_code for a MoE; run with a Python that
has transformers), on the same windows.

usage: /usr/bin/python3 tools/torch_eval.py CHECKPOINT [--split valid] [--batches N]
                                            [--data_dir DIR] [--generated LINE [--greedy]]
                                            [--hf DIR]
"""
import argparse
import configparser
import math
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F


def read_checkpoint(path, tool):
    """A checkpoint's configuration, parameters (as stored) and tokenizer model bytes (or None)."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") not in (b"moetrain-checkpoint", "moetrain-checkpoint"):
            sys.exit(f"{tool}: {path} is not a moetrain checkpoint")
        cfg = configparser.ConfigParser()
        config = f.attrs["config"]
        cfg.read_string(config.decode() if isinstance(config, bytes) else config)
        if not cfg.has_section("moe"):  # written before MoE existed: a dense model
            cfg.read_string("[moe]\nexperts = 0\nevery = 1\n")
        params = {}
        f["model"].visititems(lambda n, o: params.__setitem__(n, o[()])
                              if isinstance(o, h5py.Dataset) else None)
        tokenizer = f["tokenizer"][()].tobytes() if "tokenizer" in f else None
    return cfg, params, tokenizer


def gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layernorm(x, g, b):
    mu = x.mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(((x - mu) ** 2).mean(-1, keepdim=True) + 1e-5) * g + b


def balanced_hash(counts, E):
    order = sorted(range(len(counts)), key=lambda v: -counts[v])  # stable: ties keep id order
    load, table = [0] * E, [0] * len(counts)
    for v in order:
        e = min(range(E), key=lambda j: (load[j], j))
        table[v] = e
        load[e] += counts[v]
    return table


def moe(x, tokens, p, prefix, cfg, table):
    """x [B*T, d] -> y [B*T, d] at evaluation settings."""
    m = cfg["moe"]
    E, gate = int(m["experts"]), m["gate"]
    N = x.shape[0]
    T = tokens.shape[1]  # the window (generation: shorter than seq_len at first)
    group = int(m["group_sequences"]) * T
    if gate == "hash":
        choice = torch.tensor([table[t] for t in tokens.reshape(-1).tolist()]).view(N, 1)
        weight = torch.ones(N, 1, dtype=x.dtype)
        k = 1
    else:
        probs = torch.softmax(x @ p[prefix + "gate/w"], dim=-1)
        k = 2 if gate == "gshard" else 1
        top = probs.topk(k, dim=-1)  # ties: moetrain takes the lowest index, as topk does here
        choice, weight = top.indices, top.values
        if k == 2:
            weight = weight / weight.sum(-1, keepdim=True)
        dropless = m["dropless"] == "true"
        cap = math.inf if dropless else math.ceil(float(m["eval_capacity_factor"]) * k * group / E)
        keep = torch.ones_like(choice, dtype=torch.bool)
        for g0 in range(0, N, group):
            used = [0] * E
            for j in range(k):
                for t in range(g0, g0 + group):
                    e = int(choice[t, j])
                    if used[e] < cap:
                        used[e] += 1
                    else:
                        keep[t, j] = False
        weight = weight * keep
    y = torch.zeros_like(x)
    ex = prefix + "experts/"
    for e in range(E):
        for j in range(k):
            idx = torch.nonzero(choice[:, j] == e).squeeze(1)
            if idx.numel() == 0:
                continue
            h = gelu(x[idx] @ p[ex + "fc1/w"][e] + p[ex + "fc1/b"][e])
            y[idx] += weight[idx, j:j + 1] * (h @ p[ex + "fc2/w"][e] + p[ex + "fc2/b"][e])
    return y


def forward(p, tokens, cfg, table):
    c = cfg["model"]
    B, T = tokens.shape
    d, H, L = int(c["d_model"]), int(c["n_head"]), int(c["n_layer"])
    E, every = int(cfg["moe"]["experts"]), int(cfg["moe"]["every"])
    x = p["wte"][tokens] + p["wpe"][:T]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for i in range(L):
        b = f"blocks/{i}/"
        h = layernorm(x, p[b + "ln1/gamma"], p[b + "ln1/beta"])
        q, k, v = (h @ p[b + "attn/qkv/w"] + p[b + "attn/qkv/b"]).split(d, dim=-1)
        heads = lambda t: t.view(B, T, H, d // H).transpose(1, 2)
        s = (heads(q) @ heads(k).transpose(-1, -2)) / math.sqrt(d // H)
        a = (torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ heads(v))
        x = x + a.transpose(1, 2).reshape(B, T, d) @ p[b + "attn/proj/w"] + p[b + "attn/proj/b"]
        h = layernorm(x, p[b + "ln2/gamma"], p[b + "ln2/beta"])
        if E > 0 and i % every == every - 1:
            x = x + moe(h.reshape(B * T, d), tokens, p, b + "moe/", cfg, table).view(B, T, d)
        else:
            f = gelu(h @ p[b + "ffn/fc1/w"] + p[b + "ffn/fc1/b"])
            x = x + f @ p[b + "ffn/fc2/w"] + p[b + "ffn/fc2/b"]
    return layernorm(x, p["lnf/gamma"], p["lnf/beta"]) @ p["wte"].T


def check_generated(params, cfg, table, T, line, greedy):
    prompt, new, logprobs = line.split("|")
    prompt, new = [int(v) for v in prompt.split()], [int(v) for v in new.split()]
    logprobs = [float(v) for v in logprobs.split()[1:]]
    ids = prompt[:]
    rows = int(cfg["moe"].get("group_sequences", "1"))
    with torch.no_grad():
        for i, (got, theirs) in enumerate(zip(new, logprobs)):
            z = forward(params, torch.tensor([ids[-T:]] * rows), cfg, table)[0, -1]
            ours = float(torch.log_softmax(z, -1)[got])
            if abs(ours - theirs) > 1e-3:
                sys.exit(f"torch_eval: new token {i} ({got}): log-probability {ours:.6f} here, "
                         f"{theirs:.6f} in moetrain")
            best = int(z.argmax())
            if greedy and float(z[best] - z[got]) > 1e-4:
                sys.exit(f"torch_eval: new token {i} is {got} (logit {float(z[got]):.6f}), the most "
                         f"likely {best} ({float(z[best]):.6f})")
            ids.append(got)
    print(f"torch_eval: ok, {len(new)} tokens after {len(prompt)}{' (greedy)' if greedy else ''}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--split", default="valid")
    ap.add_argument("--batches", type=int, default=0)
    ap.add_argument("--data_dir", default=None)
    ap.add_argument("--generated", default=None)
    ap.add_argument("--greedy", action="store_true")
    ap.add_argument("--hf", default=None)
    args = ap.parse_args()
    cfg, arrays, _ = read_checkpoint(args.checkpoint, "torch_eval")
    params = {n: torch.from_numpy(a.astype(np.float64)) for n, a in arrays.items()}
    if cfg["moe"]["experts"] != "0" and cfg["moe"]["gate"] not in ("switch", "gshard", "hash"):
        sys.exit(f"torch_eval: moe.gate = {cfg['moe']['gate']} is not supported here")
    data_dir = args.data_dir or cfg["data"]["dir"]
    with h5py.File(f"{data_dir}/{args.split}.h5", "r") as f:
        data = f["tokens"][()].astype(np.int64)
    table = None
    if cfg["moe"]["experts"] != "0" and cfg["moe"]["gate"] == "hash":
        if cfg["moe"]["hash"] != "balanced":
            sys.exit("torch_eval: only the balanced hash table is rebuilt here")
        with h5py.File(f"{data_dir}/train.h5", "r") as f:
            counts = np.bincount(f["tokens"][()], minlength=params["wte"].shape[0])
        table = balanced_hash(counts.tolist(), int(cfg["moe"]["experts"]))
    T, batch = int(cfg["model"]["seq_len"]), int(cfg["train"]["batch_size"])
    if args.generated is not None:
        return check_generated(params, cfg, table, T, args.generated, args.greedy)
    model = lambda x: forward(params, x, cfg, table)
    if args.hf is not None:
        from transformers import AutoModelForCausalLM
        hf = AutoModelForCausalLM.from_pretrained(args.hf, trust_remote_code=True).eval()
        model = lambda x: hf(input_ids=x).logits.double()
    windows = (len(data) - 1) // T
    used = min(windows, args.batches * batch) if args.batches > 0 else windows
    stride = windows // used
    total, count = 0.0, 0
    with torch.no_grad():
        for first in range(0, used, batch):
            # Full batches as moetrain runs them: rows past the last window are padding (their
            # own capacity groups), which do not change the counted rows.
            rows = [min(first + r, used - 1) * stride * T for r in range(batch)]
            real = [first + r < used for r in range(batch)]
            x = torch.tensor(np.stack([data[o:o + T] for o in rows]))
            y = torch.tensor(np.stack([data[o + 1:o + T + 1] for o in rows]))
            logits = model(x)
            losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                     reduction="none").view(batch, T)
            for r in range(batch):
                if real[r]:
                    total += float(losses[r].sum())
                    count += T
    source = f"{args.hf} (transformers)" if args.hf else args.checkpoint
    print(f"torch_eval: {source} on {data_dir}/{args.split}.h5 | {count} tokens | "
          f"loss {total / count:.6f} | ppl {math.exp(total / count):.3f}")


if __name__ == "__main__":
    sys.exit(main())
