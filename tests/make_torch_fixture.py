#!/usr/bin/python3
"""Writes the PyTorch fixtures into DIR (default tests/fixtures), computed in float64
independently of moetrain's code:
- gpt_tiny.h5: a tiny GPT's weights, a batch, and PyTorch's loss and gradients for it, from the
  model contract of docs/design.md. The file uses the checkpoint layout, so moetrain loads it with
  load_model.
- label_smoothing.h5: logits, targets (one ignored), fairseq's epsilon and PyTorch's
  cross_entropy(label_smoothing=...) per row and its gradient. fairseq's eps puts 1 - eps on the
  target and eps / (V - 1) on the others, which is PyTorch's label_smoothing = eps V / (V - 1).

usage: /usr/bin/python3 tests/make_torch_fixture.py [DIR]
"""
import math
import sys

import h5py
import numpy as np
import torch

CFG = dict(vocab=50, seq_len=8, d_model=16, n_layer=2, n_head=2, d_ff=24, batch=3)


def gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layernorm(x, g, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5) * g + b


def forward(p, tokens, targets, c):
    B, T = tokens.shape
    d, H = c["d_model"], c["n_head"]
    x = p["wte"][tokens] + p["wpe"][:T]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for i in range(c["n_layer"]):
        q = lambda n: p[f"blocks/{i}/{n}"]
        h = layernorm(x, q("ln1/gamma"), q("ln1/beta"))
        qkv = h @ q("attn/qkv/w") + q("attn/qkv/b")
        Q, K, V = qkv.split(d, dim=-1)
        heads = lambda t: t.view(B, T, H, d // H).transpose(1, 2)
        Q, K, V = heads(Q), heads(K), heads(V)
        s = (Q @ K.transpose(-1, -2)) / math.sqrt(d // H)
        s = s.masked_fill(mask, float("-inf"))
        a = torch.softmax(s, dim=-1) @ V
        a = a.transpose(1, 2).reshape(B, T, d)
        x = x + a @ q("attn/proj/w") + q("attn/proj/b")
        h = layernorm(x, q("ln2/gamma"), q("ln2/beta"))
        f = gelu(h @ q("ffn/fc1/w") + q("ffn/fc1/b")) @ q("ffn/fc2/w") + q("ffn/fc2/b")
        x = x + f
    x = layernorm(x, p["lnf/gamma"], p["lnf/beta"])
    logits = x @ p["wte"].T
    return torch.nn.functional.cross_entropy(logits.reshape(-1, c["vocab"]), targets.reshape(-1))


def shapes(c):
    d, f = c["d_model"], c["d_ff"]
    out = {"wte": (c["vocab"], d), "wpe": (c["seq_len"], d), "lnf/gamma": (d,), "lnf/beta": (d,)}
    for i in range(c["n_layer"]):
        b = f"blocks/{i}/"
        out.update({b + "ln1/gamma": (d,), b + "ln1/beta": (d,), b + "ln2/gamma": (d,),
                    b + "ln2/beta": (d,), b + "attn/qkv/w": (d, 3 * d), b + "attn/qkv/b": (3 * d,),
                    b + "attn/proj/w": (d, d), b + "attn/proj/b": (d,), b + "ffn/fc1/w": (d, f),
                    b + "ffn/fc1/b": (f,), b + "ffn/fc2/w": (f, d), b + "ffn/fc2/b": (d,)})
    return out


def write_label_smoothing(out):
    g = torch.Generator().manual_seed(20261201)
    n, vocab, eps = 6, 7, 0.1
    logits = (2.0 * torch.randn(n, vocab, generator=g)).float().double().requires_grad_(True)
    targets = torch.randint(0, vocab, (n,), generator=g)
    targets[3] = -1  # ignored
    losses = torch.nn.functional.cross_entropy(logits, targets, ignore_index=-1, reduction="none",
                                               label_smoothing=eps * vocab / (vocab - 1))
    losses.sum().backward()
    with h5py.File(out, "w", libver="latest") as f:
        f.attrs["generator"] = np.bytes_(f"tests/make_torch_fixture.py, torch {torch.__version__}")
        f.attrs["epsilon"] = eps
        f["logits"] = logits.detach().float().numpy()
        f["targets"] = targets.numpy().astype(np.int32)
        f["losses"] = losses.detach().numpy()  # float64
        f["grad"] = logits.grad.numpy()
    print(f"wrote {out}: loss {losses.sum().item():.10f}")


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    out = folder + "/gpt_tiny.h5"
    c = CFG
    g = torch.Generator().manual_seed(20261123)
    params = {}
    for name, shape in shapes(c).items():
        scale = 1.0 if name.endswith("gamma") else 0.3
        base = 1.0 if name.endswith("gamma") else 0.0
        # Rounded to float32 first: moetrain starts from exactly these values.
        v = (base + scale * torch.randn(shape, generator=g)).float().double()
        params[name] = v.requires_grad_(True)
    tokens = torch.randint(0, c["vocab"], (c["batch"], c["seq_len"]), generator=g)
    targets = torch.randint(0, c["vocab"], (c["batch"], c["seq_len"]), generator=g)
    loss = forward(params, tokens, targets, c)
    loss.backward()
    with h5py.File(out, "w", libver="latest") as f:
        f.attrs["format"] = np.bytes_("moetrain-checkpoint")
        f.attrs["version"] = np.int64(1)
        f.attrs["generator"] = np.bytes_(f"tests/make_torch_fixture.py, torch {torch.__version__}")
        for k, v in c.items():
            f.attrs[k] = np.int64(v)
        for name, p in params.items():
            f[f"model/{name}"] = p.detach().float().numpy()
            f[f"grad/{name}"] = p.grad.numpy()  # float64
        f["tokens"] = tokens.numpy().astype(np.int32)
        f["targets"] = targets.numpy().astype(np.int32)
        f["loss"] = np.array([loss.item()])
    print(f"wrote {out}: loss {loss.item():.10f}")
    write_label_smoothing(folder + "/label_smoothing.h5")


if __name__ == "__main__":
    main()
