#!/usr/bin/env bash
# A trained MoE checkpoint written on 4 ranks (ep_size 4) evaluates to the same loss on 1 rank, on
# 2 ranks (ep_size 2 and 1) and on 4 ranks: expert tensors are stored whole and each layout reads
# its own rows (swapping two experts changes the loss); Gating Dropout is off at evaluation.
# `moetrain inspect` shows it and its results file; tools/plot_results.py plots the results.
# usage: eval_layouts.sh MOETRAIN TESTDATA_DIR
set -euo pipefail
bin=$1 data=$2
source "$(dirname "$0")/common.sh"
args=(--data.dir "$data/slice" --run.results_dir "$tmp" --run.name four --model.seq_len 32
      --model.d_model 32 --model.n_layer 2 --model.n_head 2 --model.d_ff 64 --moe.experts 4
      --moe.every 1 --train.batch_size 8 --train.steps 40 --train.warmup 5 --train.lr 3e-3
      --train.eval_batches 2 --train.eval_every 0 --gd.p 0.3)
timeout 120 "${mpi[@]}" -np 4 "$bin" train "${args[@]}" >/dev/null
ckpt=$tmp/four/checkpoint.h5
loss() { timeout 120 "$@" | grep -o 'loss [0-9.]*' | cut -d' ' -f2; }  # loss CMD...
ev=(eval --batches 4 --checkpoint)
one=$(loss "$bin" "${ev[@]}" "$ckpt")
check() {  # check WHAT VALUE: VALUE equals the 1-rank loss exactly (printed to 6 decimals)
  [ -n "$2" ] && [ "$2" = "$one" ] || { echo "FAIL: $1: loss '$2', 1 rank: $one"; exit 1; }
  echo "ok: $1: loss $2"
}
echo "1 rank: loss $one (ln 1024 = 6.931)"
/usr/bin/python3 -c "import sys; sys.exit(0 if float('$one') < 6.3 else 1)" ||
  { echo "FAIL: the checkpoint is untrained (loss $one)"; exit 1; }
check "2 ranks (ep 2)" "$(loss "${mpi[@]}" -np 2 "$bin" "${ev[@]}" "$ckpt")"
check "2 ranks (ep 1)" "$(loss "${mpi[@]}" -np 2 "$bin" "${ev[@]}" "$ckpt" --dist.ep_size 1)"
check "4 ranks (ep 4)" "$(loss "${mpi[@]}" -np 4 "$bin" "${ev[@]}" "$ckpt")"
# Gating Dropout is off at evaluation: gd.p = 1 (every step local) changes nothing.
check "2 ranks (ep 2), gd.p 1" "$(loss "${mpi[@]}" -np 2 "$bin" "${ev[@]}" "$ckpt" --gd.p 1)"
# The loss depends on which expert is which (so that equal losses above mean equal rows): experts
# 0 and 3 of both blocks swapped give another loss at the printed precision.
/usr/bin/python3 - "$ckpt" "$tmp/swapped.h5" <<'PY'
import shutil, sys, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "a") as f:
    for n in ("0/moe/experts/fc1/w", "0/moe/experts/fc1/b", "0/moe/experts/fc2/w",
              "0/moe/experts/fc2/b", "1/moe/experts/fc1/w", "1/moe/experts/fc1/b",
              "1/moe/experts/fc2/w", "1/moe/experts/fc2/b"):
        d = f[f"model/blocks/{n}"]
        x = d[()]
        x[[0, 3]] = x[[3, 0]]
        d[...] = x
PY
swapped=$(loss "${mpi[@]}" -np 2 "$bin" "${ev[@]}" "$tmp/swapped.h5")
[ -n "$swapped" ] && [ "$swapped" != "$one" ] ||
  { echo "FAIL: swapping two experts left the loss at $one"; exit 1; }
echo "ok: experts 0 and 3 swapped: loss $swapped"

# inspect: whole expert tensors and the layout they were written on; the results' series.
"$bin" inspect "$ckpt" >"$tmp/inspect"
grep -q "step 40 | written on 4 ranks, ep_size 4" "$tmp/inspect"
grep -qE "blocks/0/moe/experts/fc1/w +\[4,32,64\]" "$tmp/inspect"
grep -qE "blocks/1/moe/gate/w +\[32,4\]" "$tmp/inspect"
"$bin" inspect "$tmp/four/results.h5" | grep -qE "/train/loss +\[40\]"
"$bin" inspect "$tmp/four/results.h5" | grep -qE "/routing/block1/load +\[40,4\]"
if "$bin" inspect "$data/slice/train.h5" 2>"$tmp/err"; then echo "FAIL: inspect took a token file"; exit 1; fi
grep -q "train.h5: not a moetrain checkpoint or results file (format 'moetrain-tokens')" "$tmp/err"
echo "inspect ok"

# The plotting tool writes the curves, the load heat map and the all-to-all share.
/usr/bin/python3 "$(dirname "$0")/../tools/plot_results.py" "$tmp/four/results.h5" --out "$tmp/plots" >/dev/null
for png in curves.png load_four.png a2a_four.png; do [ -s "$tmp/plots/$png" ]; done
echo "plots ok"
