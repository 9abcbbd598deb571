#!/usr/bin/env python3
"""Exports a moetrain checkpoint to a Hugging Face model folder: model.safetensors, config.json
and tokenizer.model (the SentencePiece model the checkpoint carries, or data.dir's). A dense model
is GPT-2's architecture (pre-LayerNorm, learned positions, tanh GELU, tied head, linear weights
stored [in, out] as GPT-2's Conv1D), so it loads as transformers' GPT2LMHeadModel. A MoE model
(gates switch, gshard or hash) loads with trust_remote_code=True through
tools/hf/modeling_moetrain.py, copied beside it: GPT-2 with every moe.every-th block's MLP a MoE
layer at evaluation settings (the hash gate's balanced table stored with it, from data.dir's
train split). Needs h5py, numpy and safetensors (e.g. in a venv:
`/usr/bin/python3 -m venv --system-site-packages V && V/bin/pip install transformers`).

usage: export_hf.py CHECKPOINT OUT [--data_dir DIR]
"""
import argparse
import json
import os
import shutil
import sys

import h5py
import numpy as np
from safetensors.numpy import save_file

from torch_eval import balanced_hash, read_checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))
GATES = ("switch", "gshard", "hash")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--data_dir", default=None)
    args = ap.parse_args()
    cfg, p, tokenizer = read_checkpoint(args.checkpoint, "export_hf")
    p = {n: a.astype(np.float32) for n, a in p.items()}
    m, moe = cfg["model"], cfg["moe"]
    data_dir = args.data_dir or cfg["data"]["dir"]
    L, E = int(m["n_layer"]), int(moe["experts"])
    every = int(moe.get("every", "1"))
    if E > 0 and moe["gate"] not in GATES:
        sys.exit(f"export_hf: moe.gate = {moe['gate']} cannot be exported ({', '.join(GATES)})")
    if E > 0 and moe["gate"] == "hash" and moe["hash"] != "balanced":
        sys.exit("export_hf: only the balanced hash table is rebuilt here")
    t = {"transformer.wte.weight": p["wte"], "transformer.wpe.weight": p["wpe"],
         "transformer.ln_f.weight": p["lnf/gamma"], "transformer.ln_f.bias": p["lnf/beta"]}
    for i in range(L):
        b, h = f"blocks/{i}/", f"transformer.h.{i}."
        for ours, theirs in (("ln1/gamma", "ln_1.weight"), ("ln1/beta", "ln_1.bias"),
                             ("ln2/gamma", "ln_2.weight"), ("ln2/beta", "ln_2.bias"),
                             ("attn/qkv/w", "attn.c_attn.weight"), ("attn/qkv/b", "attn.c_attn.bias"),
                             ("attn/proj/w", "attn.c_proj.weight"), ("attn/proj/b", "attn.c_proj.bias")):
            t[h + theirs] = p[b + ours]
        if E > 0 and i % every == every - 1:
            for ours in ("fc1/w", "fc1/b", "fc2/w", "fc2/b"):
                t[h + "mlp." + ours.replace("/w", ".weight").replace("/b", ".bias")] = p[b + "moe/experts/" + ours]
            if moe["gate"] == "hash":
                with h5py.File(f"{data_dir}/train.h5", "r") as f:
                    counts = np.bincount(f["tokens"][()], minlength=p["wte"].shape[0])
                t[h + "mlp.table"] = np.array(balanced_hash(counts.tolist(), E), dtype=np.int64)
            else:
                t[h + "mlp.gate.weight"] = p[b + "moe/gate/w"]
        else:
            for ours, theirs in (("ffn/fc1/w", "mlp.c_fc.weight"), ("ffn/fc1/b", "mlp.c_fc.bias"),
                                 ("ffn/fc2/w", "mlp.c_proj.weight"), ("ffn/fc2/b", "mlp.c_proj.bias")):
                t[h + theirs] = p[b + ours]
    config = {"vocab_size": int(p["wte"].shape[0]), "n_positions": int(m["seq_len"]),
              "n_embd": int(m["d_model"]), "n_layer": L, "n_head": int(m["n_head"]),
              "n_inner": int(m["d_ff"]), "activation_function": "gelu_new",
              "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.0, "embd_pdrop": 0.0,
              "attn_pdrop": 0.0, "tie_word_embeddings": True, "eos_token_id": 1,
              "bos_token_id": None, "torch_dtype": "float32"}
    os.makedirs(args.out, exist_ok=True)
    if E > 0:
        config.update({"model_type": "moetrain", "architectures": ["MoetrainForCausalLM"],
                       "auto_map": {"AutoConfig": "modeling_moetrain.MoetrainConfig",
                                    "AutoModelForCausalLM": "modeling_moetrain.MoetrainForCausalLM"},
                       "moe_experts": E, "moe_every": every, "moe_gate": moe["gate"],
                       "moe_eval_capacity_factor": float(moe["eval_capacity_factor"]),
                       "moe_group_sequences": int(moe.get("group_sequences", "1")),
                       "moe_dropless": moe.get("dropless", "false") == "true"})
        shutil.copy(os.path.join(HERE, "hf", "modeling_moetrain.py"), args.out)
    else:
        config.update({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})
    save_file({k: np.ascontiguousarray(v) for k, v in t.items()},
              os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if tokenizer is None:
        tokenizer = open(f"{data_dir}/tokenizer.model", "rb").read()
    with open(os.path.join(args.out, "tokenizer.model"), "wb") as f:
        f.write(tokenizer)
    kind = f"MoE ({moe['gate']}, {E} experts, trust_remote_code)" if E > 0 else "GPT2LMHeadModel"
    print(f"export_hf: {args.checkpoint} -> {args.out} ({kind}, {len(t)} tensors)")


if __name__ == "__main__":
    main()
