#!/usr/bin/env bash
# moetrain exits (JEI-DNN, docs/methods.md §9) on a small trained MoE checkpoint: the table has
# JEI, every exit alone, the backbone and the thresholds, each row's exit shares summing to 1;
# full-depth keys and values score the exits alone as state propagation does, where a token that
# left sends no later expert rows; the backbone row is `moetrain eval`'s perplexity, also for an
# EvoMoE backbone checkpointed in its gate-sparsify phase; a rerun prints the same table; 2 ranks
# at ep_size 2 and 1 give one rank's figures (propagated); the
# exits' checkpoint resumes bitwise on 2 ranks; the intent IM loss and lambda change the gated
# model; the run folder's exits.h5 holds the table and every validation; the warm-up's
# per-exit patience restores and keeps an exit's best head, and resumes bitwise.
# usage: exits.sh MOETRAIN TESTDATA_DIR
set -euo pipefail
bin=$1 data=$2
source "$(dirname "$0")/common.sh"
timeout 120 "${mpi[@]}" -np 2 "$bin" train --data.dir "$data/slice" --run.results_dir "$tmp" \
  --run.name bb --model.seq_len 32 --model.d_model 32 --model.n_layer 4 --model.n_head 2 \
  --model.d_ff 64 --moe.experts 4 --moe.every 2 --train.batch_size 8 --train.steps 150 \
  --train.warmup 5 --train.lr 3e-3 --train.eval_every 0 >/dev/null
ckpt=$tmp/bb/checkpoint.h5
run=(exits --checkpoint "$ckpt" --blocks all --warmup 10 --switch_every 30 --eval_every 10
     --eval_batches 2 --batches 4 --split valid --thresholds 0.05,0.1,0.2)
ex=("${run[@]}" --steps 50)
table() { timeout 120 "$@" 2>&1 | grep '^exits: |'; }  # table CMD...: the final table's rows
table "$bin" "${ex[@]}" >"$tmp/one"
cat "$tmp/one"
/usr/bin/python3 - "$tmp/one" <<'PY'
import sys
rows = [l.split("|")[1:] for l in open(sys.argv[1])]
names = [r[0].strip() for r in rows]
want = ["jei", "exit 0 (block 0)", "exit 1 (block 1)", "exit 2 (block 2)", "backbone",
        "p_max >= 0.05", "p_max >= 0.1", "p_max >= 0.2"]
assert names == want, names
for r in rows:
    shares = [float(v) for v in r[5].split()]
    assert len(shares) == 4 and abs(sum(shares) - 1) < 2e-3, r
    cost, backbone_cost = (float(v) for v in r[4].split())
    assert 0 < cost <= 1 and 0 < backbone_cost <= 1, r
for l in range(3):  # exit l alone: all its tokens there, a cost below the backbone's
    shares = [float(v) for v in rows[1 + l][5].split()]
    assert shares[l] == 1 and float(rows[1 + l][4].split()[0]) < 1, rows[1 + l]
costs = [float(rows[i][4].split()[0]) for i in (1, 2, 3, 4)]
assert costs == sorted(costs), costs  # deeper exits cost more
print("ok: the table's rows, shares and costs")
PY
# Full-depth keys and values against state propagation (the default): the exits alone and the
# backbone score alike, every policy sends the backbone's expert rows in full mode, and with
# propagation a token that left reaches no later expert (MoE blocks 1 and 3; exits after 0-2).
table "$bin" "${ex[@]}" --kv full --output "$tmp/full.h5" >"$tmp/full"
/usr/bin/python3 - "$tmp/one" "$tmp/full" <<'PY'
import sys
prop, full = ({l.split("|")[1].strip(): [c.strip() for c in l.split("|")[2:]] for l in open(f)}
              for f in sys.argv[1:3])
rows = lambda t, name: float(t[name][5])
for name in ("exit 0 (block 0)", "exit 1 (block 1)", "exit 2 (block 2)", "backbone"):
    assert prop[name][:5] == full[name][:5], (name, prop[name], full[name])
assert all(rows(full, n) == 1 for n in full), full
assert rows(prop, "exit 0 (block 0)") == 0 and rows(prop, "backbone") == 1, prop
assert 0 < rows(prop, "exit 1 (block 1)") == rows(prop, "exit 2 (block 2)") < 1, prop
jei = [float(v) for v in prop["jei"][4].split()]
assert jei[0] + jei[1] > 0.1 and rows(prop, "jei") < 1, prop["jei"]  # tokens left before block 3
assert prop["jei"][0] != full["jei"][0], (prop["jei"], full["jei"])  # their state changed others
print("ok: --kv full and propagate: the same exits alone, fewer expert rows where tokens left")
PY
# The results file: the table's figures as its last rows, one validation per 10 steps.
/usr/bin/python3 - "$tmp/bb/exits.h5" "$tmp/one" <<'PY'
import sys, h5py
rows = [l.split("|")[1:] for l in open(sys.argv[2])]
with h5py.File(sys.argv[1], "r") as f:
    assert list(f["exits/valid/step"][()]) == [10, 20, 30, 40, 50], f["exits/valid/step"][()]
    assert f["exits/valid/share"].shape == (5, 4) and f["exits/valid/pos_weight"].shape == (5, 3)
    for col, name in ((1, "ppl"), (2, "accuracy"), (3, "ece"), (6, "dispatch")):
        stored = f[f"exits/score/{name}"][0]
        for r, v in zip(rows, stored):
            assert abs(float(r[col]) - v) <= 1e-3 * max(1, v), (name, r, v)
    shares = f["exits/score/share"][0].reshape(len(rows), 4)
    for r, s in zip(rows, shares):
        assert all(abs(float(a) - b) < 1e-3 for a, b in zip(r[5].split(), s)), (r, s)
    assert b"[exits]\nblocks = all\nlambda = 0.1" in f.attrs["config"].tobytes()
    assert b"\nkv = propagate\n" in f.attrs["config"].tobytes()
    assert f["exits/valid/dispatch"].shape == (5,) and f["exits/valid/dispatch"][-1] < 1
print("ok: exits.h5 holds the table and the validations")
PY
ppl=$(timeout 60 "$bin" eval --checkpoint "$ckpt" --split valid --batches 4 | grep -o 'ppl [0-9.]*' | cut -d' ' -f2)
backbone=$(grep '| backbone |' "$tmp/one" | cut -d'|' -f3 | tr -d ' ')
[ "$backbone" = "$ppl" ] || { echo "FAIL: backbone ppl $backbone, moetrain eval $ppl"; exit 1; }
echo "ok: the backbone row is moetrain eval's ppl $ppl"
# An EvoMoE backbone checkpointed in its gate-sparsify phase (spawned at step 10, annealing to
# step 50, saved after step 30) routes there in exits as in eval: its backbone row is eval's ppl
# (the dense phase, or another temperature, routes otherwise).
timeout 120 "$bin" train --data.dir "$data/slice" --run.results_dir "$tmp" --run.name evo \
  --model.seq_len 32 --model.d_model 32 --model.n_layer 2 --model.n_head 2 --model.d_ff 64 \
  --moe.experts 4 --moe.every 2 --moe.gate evomoe --evo.diversify_step 10 --evo.anneal_steps 40 \
  --train.batch_size 8 --train.steps 30 --train.warmup 5 --train.lr 3e-3 --train.eval_every 0 \
  >/dev/null
evo_ppl=$(timeout 60 "$bin" eval --checkpoint "$tmp/evo/checkpoint.h5" --split valid --batches 4 |
  grep -o 'ppl [0-9.]*' | cut -d' ' -f2)
table "$bin" exits --checkpoint "$tmp/evo/checkpoint.h5" --blocks all --warmup 2 --steps 4 \
  --eval_every 4 --eval_batches 1 --batches 4 --split valid --thresholds 0.1 >"$tmp/evo_table"
evo_backbone=$(grep '| backbone |' "$tmp/evo_table" | cut -d'|' -f3 | tr -d ' ')
[ -n "$evo_ppl" ] && [ "$evo_backbone" = "$evo_ppl" ] ||
  { echo "FAIL: EvoMoE backbone ppl $evo_backbone, moetrain eval $evo_ppl"; exit 1; }
echo "ok: an EvoMoE checkpoint in its gate-sparsify phase scores eval's ppl $evo_ppl in exits"
table "$bin" "${ex[@]}" >"$tmp/again"
cmp -s "$tmp/one" "$tmp/again" || { echo "FAIL: a rerun differs"; diff "$tmp/one" "$tmp/again"; exit 1; }
echo "ok: a rerun prints the same table"
same() {  # same WHAT FILE: every figure within 1e-3 (relative) of one rank's
  /usr/bin/python3 - "$tmp/one" "$2" "$1" <<'PY'
import sys
a, b = ([[float(v) for c in l.split("|")[2:] for v in c.split()] for l in open(f)] for f in sys.argv[1:3])
bad = [(x, y) for ra, rb in zip(a, b) for x, y in zip(ra, rb) if abs(x - y) > 1e-3 * max(1, abs(x))]
assert len(a) == len(b) and not bad, (sys.argv[3], bad[:5])
print("ok:", sys.argv[3], "gives one rank's table")
PY
}
table "${mpi[@]}" -np 2 "$bin" "${ex[@]}" --save "$tmp/two.h5" --output "$tmp/two_results.h5" >"$tmp/two"
same "2 ranks (ep 2)" "$tmp/two"
# The exits' checkpoint: 30 steps (in the gate phase), then resumed to 50 on 2 ranks, equals the
# uninterrupted run bitwise (table, validations, every dataset of the checkpoint); resumed after
# its last step, it scores without training.
timeout 120 "${mpi[@]}" -np 2 "$bin" "${run[@]}" --steps 30 --save "$tmp/part.h5" \
  --output "$tmp/part_results.h5" >/dev/null
table "${mpi[@]}" -np 2 "$bin" "${ex[@]}" --resume "$tmp/part.h5" --save "$tmp/resumed.h5" \
  --output "$tmp/part_results.h5" >"$tmp/resumed"
cmp -s "$tmp/two" "$tmp/resumed" || { echo "FAIL: the resumed table differs"; diff "$tmp/two" "$tmp/resumed"; exit 1; }
/usr/bin/python3 - "$tmp/two.h5" "$tmp/resumed.h5" "$tmp/two_results.h5" "$tmp/part_results.h5" <<'PY'
import sys, h5py, numpy as np
def tensors(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
        out["attrs"] = (f.attrs["step"], dict(f["optim"].attrs), dict(f["scheduler"].attrs))
    return out
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
# 3 exits: 4 tensors and the warm-up's 2 best, each with m and v
assert a.keys() == b.keys() and len(a) == 1 + (4 + 2) * 3 * 3, sorted(a)
for k in a:
    if k != "attrs":
        assert np.array_equal(a[k], b[k]), k
assert str(a["attrs"]) == str(b["attrs"]), (a["attrs"], b["attrs"])
assert a["attrs"][1]["heads_step"] == 20 and a["attrs"][1]["gates_step"] == 30, a["attrs"]
with h5py.File(sys.argv[3], "r") as f, h5py.File(sys.argv[4], "r") as g:
    for name in ("step", "ppl", "ece", "dispatch", "share", "pos_weight", "alone_ce"):
        assert np.array_equal(f[f"exits/valid/{name}"][()], g[f"exits/valid/{name}"][()]), name
    assert list(g["exits/valid/step"][()]) == [10, 20, 30, 40, 50]
    assert np.array_equal(f["exits/score/ppl"][()], g["exits/score/ppl"][()])
print("ok: 30 steps resumed to 50 equal 50 bitwise (the table, the validations, the checkpoint)")
PY
timeout 120 "${mpi[@]}" -np 2 "$bin" "${ex[@]}" --resume "$tmp/resumed.h5" --save "$tmp/again.h5" \
  --output "$tmp/again_results.h5" >"$tmp/scored" 2>&1
! grep -q '^exits | step' "$tmp/scored" || { echo "FAIL: a finished checkpoint trained again"; exit 1; }
grep '^exits: |' "$tmp/scored" | cmp -s - "$tmp/two" || { echo "FAIL: scoring a finished checkpoint differs"; exit 1; }
echo "ok: resumed after its last step, the checkpoint scores the same table without training"
table "${mpi[@]}" -np 2 "$bin" "${ex[@]}" --dist.ep_size 1 >"$tmp/two_ep1"
same "2 ranks (ep 1)" "$tmp/two_ep1"
# The gated model depends on the IM loss and on lambda (the rows of the backbone and of the
# exits alone before the IM phase do not on lambda).
table "$bin" "${ex[@]}" --im_loss intent | grep '| jei |' >"$tmp/intent"
table "$bin" "${ex[@]}" --lambda 3 | grep '| jei |' >"$tmp/lambda"
for f in intent lambda; do
  ! grep -q "$(cat "$tmp/$f")" "$tmp/one" || { echo "FAIL: $f left the jei row as it was"; exit 1; }
done
echo "ok: --im_loss intent and --lambda 3 change the jei row"
# The warm-up's per-exit patience (1 validation, every 2 steps, at a learning rate that makes the
# heads worse): an exit that stops improving gets its best head back and scores exactly its best
# cross-entropy at every later validation of the warm-up; a run stopped after a freeze and
# resumed equals the uninterrupted one bitwise.
pat=(exits --checkpoint "$ckpt" --blocks all --warmup 24 --patience 1 --eval_every 2
     --eval_batches 2 --batches 2 --split valid --lr 0.01 --thresholds 0.1)
timeout 120 "$bin" "${pat[@]}" --steps 30 --save "$tmp/pat.h5" --output "$tmp/pat_results.h5" \
  >"$tmp/pat.log" 2>&1
grep 'waits for the warm-up' "$tmp/pat.log" >"$tmp/froze" ||
  { echo "FAIL: no exit froze"; cat "$tmp/pat.log"; exit 1; }
/usr/bin/python3 - "$tmp/pat_results.h5" "$tmp/froze" <<'PY'
import re, sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    steps, alone = f["exits/valid/step"][()], f["exits/valid/alone_ce"][()]
kept = 0
for line in open(sys.argv[2]):
    at, l = (int(v) for v in re.search(r"step (\d+) \| exit (\d+)", line).groups())
    i = list(steps).index(at)
    best = alone[:i + 1, l].min()
    assert alone[i, l] > best, (l, at, alone[:i + 1, l])  # frozen on a validation that did worse
    later = [j for j in range(i + 1, len(steps)) if steps[j] <= 24]
    assert all(alone[j, l] == best for j in later), (l, at, best, alone[:, l])
    kept += len(later) > 0
assert kept > 0, open(sys.argv[2]).read()
print(f"ok: {kept} exits that stopped improving in the warm-up kept their best heads exactly")
PY
timeout 120 "$bin" "${pat[@]}" --steps 12 --save "$tmp/pat_part.h5" \
  --output "$tmp/pat_part_results.h5" >/dev/null 2>&1
timeout 120 "$bin" "${pat[@]}" --steps 30 --resume "$tmp/pat_part.h5" --save "$tmp/pat_resumed.h5" \
  --output "$tmp/pat_part_results.h5" >/dev/null 2>&1
/usr/bin/python3 - "$tmp/pat.h5" "$tmp/pat_resumed.h5" "$tmp/pat_results.h5" "$tmp/pat_part_results.h5" <<'PY'
import sys, h5py, numpy as np
def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
        out.update({"scheduler/" + k: v for k, v in f["scheduler"].attrs.items()})
    return out
a, b = datasets(sys.argv[1]), datasets(sys.argv[2])
assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), \
    [k for k in a if not np.array_equal(a[k], b.get(k))]
with h5py.File(sys.argv[3], "r") as f, h5py.File(sys.argv[4], "r") as g:
    for name in ("step", "ppl", "alone_ce"):
        assert np.array_equal(f[f"exits/valid/{name}"][()], g[f"exits/valid/{name}"][()]), name
print("ok: the warm-up with frozen exits, stopped after step 12 and resumed, equals the whole run bitwise")
PY
