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

# The plotting tool: the curves, the load heat maps and the all-to-all share of two runs of one
# name, told apart; the curves plot the recorded series (smoothed over raw, the dropped share of
# the choices), the heat maps share one colour scale centred on 1/E.
mkdir -p "$tmp/other/four" && cp "$tmp/four/results.h5" "$tmp/other/four/"
tools=$(dirname "$0")/../tools
/usr/bin/python3 "$tools/plot_results.py" "$tmp/four/results.h5" "$tmp/other/four/results.h5" \
  --out "$tmp/plots" >/dev/null
base=$(basename "$tmp")
for png in curves load_${base}_four a2a_${base}_four load_other_four a2a_other_four; do
  [ -s "$tmp/plots/$png.png" ] || { echo "FAIL: no $png.png"; ls "$tmp/plots"; exit 1; }
done
/usr/bin/python3 - "$tools" "$tmp/four/results.h5" <<'PY'
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import plot_results as p
f = p.open_results(sys.argv[2])
fig = p.plot_curves([f], ["four"], 0.9)
ce_ax, ppl_ax, drop_ax = fig.axes
ce = f["train/ce"][()]
smoothed, raw = (l.get_ydata() for l in ce_ax.lines)
assert np.allclose(raw, ce) and np.allclose(smoothed, p.smooth(ce, 0.9)), "the CE curves"
assert abs(smoothed[-1] - (0.1 * sum(0.9 ** i * v for i, v in enumerate(ce[::-1])) / (1 - 0.9 ** len(ce)))) < 1e-9
blocks = [f"routing/{b}" for b in f["routing"]]
share = sum(f[f"{b}/dropped"][()] for b in blocks) / sum(f[f"{b}/choices"][()] for b in blocks)
assert np.allclose(drop_ax.lines[1].get_ydata(), 100 * share), "the dropped share"
assert ppl_ax.get_yscale() == "log" and len(ppl_ax.get_yticks()) >= 2, ppl_ax.get_yticks()
labels = [t.get_text() for t in ppl_ax.get_yticklabels()]
assert all(l and "^" not in l and "e" not in l for l in labels), labels  # plain numbers
heat = p.plot_load(f, "four")
images = [im for ax in heat.axes for im in ax.get_images()]
assert len(images) == len(blocks) and len({id(im.norm) for im in images}) == 1, "one colour scale"
assert images[0].norm.vcenter == 0.25 and images[0].norm.vmax >= max(im.get_array().max() for im in images)
assert p.run_labels(["r/a/x/results.h5", "r/b/x/results.h5", "q/y/results.h5"]) == ["a/x", "b/x", "y"]
print("ok: the plots hold the recorded series, the heat maps one scale")
PY
echo "plots ok"
