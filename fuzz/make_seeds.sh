#!/usr/bin/env bash
# Writes the committed seed inputs under fuzz/corpus/ with the real binary: a token file and a
# checkpoint of a tiny MoE (d_model 4, 2 experts) trained 2 steps on a made-up text, and each
# config in configs/ behind a line of flags.
# usage: fuzz/make_seeds.sh MOETRAIN
set -euo pipefail
bin=$(realpath "$1")
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 - "$tmp/raw" <<'PY'
import os, random, sys
random.seed(1)
os.makedirs(sys.argv[1])
words = ["".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(random.randint(2, 7)))
         for _ in range(400)]
for split, lines in (("train", 400), ("valid", 40), ("test", 40)):
    with open(f"{sys.argv[1]}/{split}.txt", "w") as f:
        for _ in range(lines):
            f.write(" ".join(random.choice(words) for _ in range(8)) + "\n")
PY
"$bin" prepare --input "$tmp/raw" --output "$tmp/data" --vocab_size 300 >/dev/null 2>&1
"$bin" train --data.dir "$tmp/data" --run.results_dir "$tmp/out" --run.name tiny \
  --model.seq_len 8 --model.d_model 4 --model.n_layer 2 --model.n_head 1 --model.d_ff 8 \
  --moe.experts 2 --moe.every 2 --moe.gate switch --train.batch_size 2 --train.steps 2 \
  --train.eval_every 2 --train.eval_batches 1 >/dev/null
rm -rf corpus && mkdir -p corpus/{tokens,checkpoint,config}
cp "$tmp/data/valid.h5" corpus/tokens/valid.h5
cp "$tmp/out/tiny/checkpoint.h5" corpus/checkpoint/tiny_moe.h5
for ini in ../configs/*.ini; do
  { echo "--train.steps=5 --moe.gate hash --dist.timeout_s 3"; echo "%%"; cat "$ini"; } \
    >"corpus/config/$(basename "$ini" .ini).txt"
done
echo "--model.d_model 64 --train.lr=1e-3 --run.overwrite true" >corpus/config/flags_only.txt
ls -l corpus/*
