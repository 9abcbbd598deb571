#!/usr/bin/env bash
# A MoE checkpoint written on 4 ranks (ep_size 4) evaluates to the same loss on 1 rank, on 2
# ranks (ep_size 2) and on 2 ranks (ep_size 1): expert tensors are stored whole and each layout
# reads its own rows. `moetrain inspect` shows it and its results file; tools/plot_results.py
# plots the results.
# usage: eval_layouts.sh MOETRAIN TESTDATA_DIR
set -euo pipefail
bin=$1 data=$2
source "$(dirname "$0")/common.sh"
args=(--data.dir "$data/slice" --run.results_dir "$tmp" --run.name four --model.seq_len 32
      --model.d_model 32 --model.n_layer 2 --model.n_head 2 --model.d_ff 64 --moe.experts 4
      --moe.every 1 --train.batch_size 8 --train.steps 6 --train.eval_batches 2)
timeout 120 "${mpi[@]}" -np 4 "$bin" train "${args[@]}" >/dev/null
ckpt=$tmp/four/checkpoint.h5
loss() { timeout 120 "$@" eval --checkpoint "$ckpt" --batches 4 | grep -o 'loss [0-9.]*'; }
one=$(loss "$bin")
two=$(loss "${mpi[@]}" -np 2 "$bin")
two_replicated=$(timeout 120 "${mpi[@]}" -np 2 "$bin" eval --checkpoint "$ckpt" --batches 4 --dist.ep_size 1 | grep -o 'loss [0-9.]*')
four=$(loss "${mpi[@]}" -np 4 "$bin")
echo "1 rank: $one | 2 ranks (ep 2): $two | 2 ranks (ep 1): $two_replicated | 4 ranks: $four"
[ -n "$one" ] && [ "$one" = "$two" ] && [ "$one" = "$two_replicated" ] && [ "$one" = "$four" ]

# inspect: whole expert tensors and the layout they were written on; the results' series.
"$bin" inspect "$ckpt" >"$tmp/inspect"
grep -q "step 6 | written on 4 ranks, ep_size 4" "$tmp/inspect"
grep -qE "blocks/0/moe/experts/fc1/w +\[4,32,64\]" "$tmp/inspect"
grep -qE "blocks/1/moe/gate/w +\[32,4\]" "$tmp/inspect"
"$bin" inspect "$tmp/four/results.h5" | grep -qE "/train/loss +\[6\]"
"$bin" inspect "$tmp/four/results.h5" | grep -qE "/routing/block1/load +\[6,4\]"
! "$bin" inspect "$data/slice/train.h5" 2>"$tmp/err"
grep -q "train.h5: not a moetrain checkpoint or results file (format 'moetrain-tokens')" "$tmp/err"
echo "inspect ok"

# The plotting tool writes the curves, the load heat map and the all-to-all share.
/usr/bin/python3 "$(dirname "$0")/../tools/plot_results.py" "$tmp/four/results.h5" --out "$tmp/plots" >/dev/null
for png in curves.png load_four.png a2a_four.png; do [ -s "$tmp/plots/$png" ]; done
echo "plots ok"
