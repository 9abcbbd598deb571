#!/usr/bin/env bash
# Resuming: periodic checkpoints (the newest K kept), --resume latest by step with its file left
# intact, bitwise on the same layout (also from an older checkpoint after the run went on; EvoMoE
# across its phases; DSelect-k while its selectors saturate; dropout, label smoothing and
# micro-batches; bf16 matmuls),
# resharded 4 -> 2 -> 1 ranks within float tolerance, truncated, mismatched, damaged or NaN
# checkpoints stopping every rank with a message that names the file (and the dataset), and
# --resume latest passing over a damaged newest checkpoint.
# usage: resume.sh MOETRAIN TESTDATA_DIR
set -uo pipefail
bin=$1 data=$2
source "$(dirname "$0")/common.sh"
args=(--data.dir "$data/slice" --run.results_dir "$tmp" --model.seq_len 32 --model.d_model 32
      --model.n_layer 2 --model.n_head 2 --model.d_ff 64 --moe.experts 4 --moe.every 1
      --train.batch_size 8 --train.steps 12 --train.warmup 3 --train.eval_every 4
      --train.eval_batches 2 --train.eps 1e-6 --train.log_every 2)
run() { timeout 120 "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }; }
fails() {  # fails PATTERN CMD...: CMD exits non-zero with PATTERN in its output
  local pattern=$1
  shift
  if timeout 120 "$@" >"$tmp/log" 2>&1 || ! grep -qE "$pattern" "$tmp/log"; then
    echo "FAIL: expected an error matching '$pattern' from: $*"
    cat "$tmp/log"
    exit 1
  fi
  echo "ok: $(grep -E "$pattern" "$tmp/log" | head -1)"
}
every_rank() {  # every_rank N PATTERN: each of ranks 0..N-1 printed "rank R: error: PATTERN"
  for ((r = 0; r < $1; r++)); do
    grep -qE "rank $r: error: $2" "$tmp/log" || { echo "FAIL: rank $r printed no '$2'"; cat "$tmp/log"; exit 1; }
  done
}

run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" --run.name whole --train.checkpoint_every 2 --train.keep_checkpoints 3
kept=$(cd "$tmp/whole/checkpoints" && echo *.h5)
[ "$kept" = "step_00000006.h5 step_00000008.h5 step_00000010.h5" ] || { echo "FAIL: kept $kept"; exit 1; }
echo "ok: checkpoints every 2 steps, the newest 3 kept: $kept"
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" --run.name cut --train.run_steps 5
# The KEY=VALUE spelling of flags and of --resume.
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" --run.name=cut --resume=latest
grep -q "resuming after step 5 from $tmp/cut/checkpoints/step_00000005.h5" "$tmp/log" || { echo "FAIL: --resume=latest did not resume"; cat "$tmp/log"; exit 1; }
# --resume latest takes the newest checkpoint by step, not by file time, and leaves it untouched.
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" --run.name latest --train.checkpoint_every 2 --train.keep_checkpoints 3 --train.run_steps 7
newest=$tmp/latest/checkpoints/step_00000007.h5
touch -d "+1 hour" "$tmp/latest/checkpoints/step_00000004.h5"
sha_newest=$(sha256sum "$newest")
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" --run.name latest --train.checkpoint_every 2 --train.keep_checkpoints 3 --resume latest
grep -q "resuming after step 7 from $newest" "$tmp/log" || { echo "FAIL: latest did not pick $newest"; cat "$tmp/log"; exit 1; }
[ "$sha_newest" = "$(sha256sum "$newest")" ] || { echo "FAIL: the resume wrote to $newest"; exit 1; }
echo "ok: --resume latest picked step 7 over a newer file of step 4 and left it intact"
# run.overwrite: a fresh run replaces an earlier one's checkpoints, so --resume latest continues
# the new run (at step 1), not the old run's step 4.
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" --run.name over --train.checkpoint_every 2 --train.run_steps 5
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" --run.name over --run.overwrite true --train.run_steps 1
[ "$(cd "$tmp/over/checkpoints" && echo *.h5)" = "step_00000001.h5" ] || { echo "FAIL: the old checkpoints stayed: $(ls "$tmp/over/checkpoints")"; exit 1; }
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" --run.name over --resume latest
grep -q "resuming after step 1 from" "$tmp/log" || { echo "FAIL: did not resume the new run"; cat "$tmp/log"; exit 1; }
echo "ok: run.overwrite removed the earlier checkpoints; --resume latest continued the new run"
# A run that went on past its checkpoint: resume whole/ from step 6; its results are cut back.
cp -r "$tmp/whole" "$tmp/again"
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" --run.name again --resume "$tmp/again/checkpoints/step_00000006.h5"
# EvoMoE across its phases: spawn before step 3, stopped at step 5 (gate-sparsify), resumed.
evo=(--moe.gate evomoe --evo.diversify_step 3 --evo.anneal_steps 4 --evo.threshold 0.05)
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${evo[@]}" --run.name evo_whole
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${evo[@]}" --run.name evo_cut --train.run_steps 5
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${evo[@]}" --run.name evo_cut --resume latest
# DSelect-k: stopped at step 5 while experts per token fall from 4 toward k = 2, resumed.
dsk=(--moe.gate dselect_k --moe.dropless true --dselect.gamma 0.05)
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${dsk[@]}" --run.name dsk_whole
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${dsk[@]}" --run.name dsk_cut --train.run_steps 5
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${dsk[@]}" --run.name dsk_cut --resume latest
# COMET+: the soft permutation learned for 7 steps, stopped at step 5 (its stored soft P in the
# checkpoint), resumed; from step 7 on the hard permutation comes from that stored P.
cmp=(--moe.gate comet --moe.dropless true --comet.gamma 0.05 --perm.steps 7)
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${cmp[@]}" --run.name perm_whole
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${cmp[@]}" --run.name perm_cut --train.run_steps 5
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${cmp[@]}" --run.name perm_cut --resume latest
# Dropout and label smoothing: the masks continue after a resume (2 micro-batches per rank too).
drop=(--model.dropout 0.2 --train.label_smoothing 0.1 --train.micro_batch_size 2)
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${drop[@]}" --run.name drop_whole
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${drop[@]}" --run.name drop_cut --train.run_steps 5
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${drop[@]}" --run.name drop_cut --resume latest
# bf16 matmuls (where the CPU has AVX512_BF16): stopped at step 5 and resumed, the weights' bf16
# copy remade from the loaded values.
b16=(--train.precision bf16)
if grep -qw avx512_bf16 /proc/cpuinfo; then
  run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${b16[@]}" --run.name b16_whole
  run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${b16[@]}" --run.name b16_cut --train.run_steps 5
  run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" "${b16[@]}" --run.name b16_cut --resume latest
fi
# Resharding: 4 ranks (ep 4) for 5 steps, then 2 ranks (ep 2) to step 9, then 1 rank to the end.
run "${mpi[@]}" -np 4 "$bin" train "${args[@]}" --run.name reshard --train.run_steps 5
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" --run.name reshard --resume latest --train.run_steps 4
run "$bin" train "${args[@]}" --run.name reshard --resume latest

/usr/bin/python3 - "$tmp" <<'PY' || exit 1
import os, sys, h5py, numpy as np
d = sys.argv[1]
def curves(run):
    with h5py.File(f"{d}/{run}/results.h5") as f:
        return {k: f[k][()] for k in ("train/loss", "train/step", "valid/ppl", "routing/block0/load")}
def params(run):
    out = {}
    with h5py.File(f"{d}/{run}/checkpoint.h5") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out
whole, pw = curves("whole"), params("whole")
for run in ("cut", "again", "over"):
    c, p = curves(run), params(run)
    for k in whole:
        assert np.array_equal(whole[k], c[k]), f"{run}: {k} differs from the uninterrupted run"
    assert all(np.array_equal(pw[k], p[k]) for k in pw), f"{run}: checkpoint differs"
    print(f"ok: {run}: curves and all {len(pw)} checkpoint datasets bitwise equal")
# metrics.jsonl: the logged steps (1-based) and evaluations, cut back and continued on a resume.
import json
def metrics(run):
    with open(f"{d}/{run}/metrics.jsonl") as f:
        return [(m["kind"], m["step"], m["loss"]) for m in map(json.loads, f)]
mw = metrics("whole")
train = [s for k, s, _ in mw if k == "train"]
assert train == [1] + list(range(2, 13, 2)), f"logged steps {train}"
assert all(l == np.float64(whole["train/loss"][s - 1]) for k, s, l in mw if k == "train"), "jsonl loss"
assert [s for k, s, _ in mw if k == "valid"] == [4, 8, 12], mw
assert [p for k, s, p in [(m["kind"], m["step"], m.get("ppl")) for m in map(json.loads, open(f"{d}/whole/metrics.jsonl"))] if k == "valid"] == list(whole["valid/ppl"]), "jsonl ppl"
for run in ("cut", "again"):
    assert metrics(run) == mw, f"{run}: metrics.jsonl {metrics(run)} differs from {mw}"
print(f"ok: metrics.jsonl: {len(mw)} lines, 1-based steps, the results' values, equal after the resumes")
with h5py.File(f"{d}/evo_whole/results.h5") as a, h5py.File(f"{d}/evo_cut/results.h5") as b:
    for k in ("train/loss", "train/tau", "phase/step", "phase/id", "routing/block1/experts_per_token"):
        assert np.array_equal(a[k][()], b[k][()]), f"evomoe: {k} differs after the resume"
    assert list(b["phase/id"][()]) == [0, 1, 2], list(b["phase/id"][()])
pe, pc = params("evo_whole"), params("evo_cut")
assert all(np.array_equal(pe[k], pc[k]) for k in pe), "evomoe: checkpoint differs"
print("ok: evomoe resumed in its gate-sparsify phase: curves, phases and checkpoint bitwise equal")
with h5py.File(f"{d}/dsk_whole/results.h5") as a, h5py.File(f"{d}/dsk_cut/results.h5") as b:
    for k in ("train/loss", "train/aux", "valid/ppl", "routing/block0/experts_per_token"):
        assert np.array_equal(a[k][()], b[k][()]), f"dselect_k: {k} differs after the resume"
    e = b["routing/block0/experts_per_token"][()]
    assert e[0] == 4 and e[5] < e[0], f"dselect_k: experts per token {e}"
pe, pc = params("dsk_whole"), params("dsk_cut")
assert all(np.array_equal(pe[k], pc[k]) for k in pe), "dselect_k: checkpoint differs"
print(f"ok: dselect_k resumed at step 5 (experts per token {e[0]:.2f} -> {e[-1]:.2f}): curves and checkpoint bitwise equal")
with h5py.File(f"{d}/perm_whole/results.h5") as a, h5py.File(f"{d}/perm_cut/results.h5") as b:
    for k in ("train/loss", "train/aux", "valid/ppl", "routing/block0/load",
              "routing/block0/experts_per_token"):
        assert np.array_equal(a[k][()], b[k][()]), f"comet+: {k} differs after the resume"
    e = b["routing/block0/experts_per_token"][()]
    # Soft: every expert runs while the permutation is learned; hard: the tree's own experts.
    assert e[0] == 4 and e[-1] < 4, f"comet+: experts per token {e}"
pe, pc = params("perm_whole"), params("perm_cut")
assert all(np.array_equal(pe[k], pc[k]) for k in pe), "comet+: checkpoint differs"
soft = [k for k in pe if k.endswith("perm/soft")]
assert soft and all(abs(pe[k].sum() - 4) < 1e-3 for k in soft), "comet+: no stored soft permutation"
print(f"ok: comet+ resumed while learning its permutation ({len(soft)} stored): curves and checkpoint bitwise equal")
def resumed_equal(name, what):
    """name_cut, resumed, equals name_whole bitwise (curves, checkpoint) and differs from the plain run."""
    w, c = curves(f"{name}_whole"), curves(f"{name}_cut")
    assert all(np.array_equal(w[k], c[k]) for k in w), f"{what}: curves differ after the resume"
    assert not np.array_equal(w["train/loss"], whole["train/loss"]), f"{what} changed nothing"
    p, pc = params(f"{name}_whole"), params(f"{name}_cut")
    assert all(np.array_equal(p[k], pc[k]) for k in p), f"{what}: checkpoint differs"
    print(f"ok: {what} resumed: curves and checkpoint bitwise equal, and not the plain run's curve")
resumed_equal("drop", "dropout + label smoothing + micro-batches")
if os.path.exists(f"{d}/b16_whole"):
    resumed_equal("b16", "bf16")
else:
    print("skipped: bf16 resume (no AVX512_BF16 on this CPU)")
r = curves("reshard")
rel = np.abs(r["train/loss"] - whole["train/loss"]) / np.abs(whole["train/loss"])
assert r["train/loss"].shape == (12,) and rel.max() < 1e-7, f"reshard: loss differs by {rel.max()}"
pr = params("reshard")
worst = max(np.linalg.norm(pr[k] - pw[k]) / max(np.linalg.norm(pw[k]), 1e-30) for k in pw if k.startswith("model/"))
assert worst < 2e-6, f"reshard: parameters differ by {worst}"
print(f"ok: reshard 4 -> 2 -> 1 ranks: loss within {rel.max():.1e}, parameters within {worst:.1e}")
PY

ck=$tmp/whole/checkpoint.h5
head -c 20000 "$ck" >"$tmp/truncated.h5"
fails "error: .*truncated.h5" "$bin" train "${args[@]}" --run.name t --resume "$tmp/truncated.h5"
cp "$ck" "$tmp/v99.h5"
/usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('$tmp/v99.h5', 'a'); f.attrs['version'] = np.int64(99)"
fails "error: $tmp/v99.h5: checkpoint format version 99" "$bin" train "${args[@]}" --run.name t --resume "$tmp/v99.h5"
mid=$tmp/whole/checkpoints/step_00000008.h5
fails "error: $mid: dataset /model/[a-z/0-9]+ has shape \[[0-9,]+\], expected \[[0-9,]*48[0-9,]*\]" \
  "$bin" train "${args[@]}" --run.name t --model.d_model 48 --resume "$mid"
fails "error: $ck: written after step 12, and train.steps is 12" "$bin" train "${args[@]}" --run.name t --resume "$ck"
fails "error: --resume latest: no checkpoint in $tmp/nothing" "$bin" train "${args[@]}" --run.name nothing --resume latest
fails "rank 2: error: $mid: cannot resume on this layout: moe.experts = 4 is not divisible by the expert-parallel size 3" \
  "${mpi[@]}" -np 3 "$bin" train "${args[@]}" --run.name t --resume "$mid"
every_rank 3 "$mid: cannot resume on this layout"
fails "rank 1: error: .*truncated.h5" "${mpi[@]}" -np 2 "$bin" train "${args[@]}" --run.name t --resume "$tmp/truncated.h5"
every_rank 2 ".*truncated.h5: cannot open HDF5 file"
# Checkpoint integrity: every dataset carries a Fletcher32 checksum; a byte flipped inside
# /model/wte's data is reported by name (eval and resume); --resume latest passes over a damaged
# newest checkpoint with a warning and resumes from the newest intact one; NaN is reported by name.
/usr/bin/python3 - "$mid" "$tmp/flip.h5" "$tmp/nan.h5" <<'PY' || exit 1
import shutil, sys, h5py, numpy as np
src, flip, nan = sys.argv[1:]
with h5py.File(src) as f:
    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    assert names and all(f[n].fletcher32 for n in names), "a dataset without a checksum"
    offset = f["model/wte"].id.get_chunk_info(0).byte_offset
shutil.copy(src, flip)
with open(flip, "r+b") as g:
    g.seek(offset + 100)
    b = g.read(1)
    g.seek(offset + 100)
    g.write(bytes([b[0] ^ 0x10]))
shutil.copy(src, nan)
with h5py.File(nan, "a") as f:
    f["model/wte"][3, 5] = np.nan
print(f"ok: all {len(names)} datasets checksummed; flipped a byte of /model/wte at {offset + 100}")
PY
fails "error: $tmp/flip.h5: cannot read (rows of )?dataset /model/wte \(its checksum does not match" \
  "$bin" eval --checkpoint "$tmp/flip.h5" --batches 1
fails "error: $tmp/flip.h5: cannot read (rows of )?dataset /model/wte \(its checksum does not match" \
  "$bin" train "${args[@]}" --run.name t --resume "$tmp/flip.h5"
fails "error: $tmp/nan.h5: /model/wte holds NaN or Inf" "$bin" eval --checkpoint "$tmp/nan.h5" --batches 1
mkdir -p "$tmp/damaged/checkpoints"
cp "$tmp/whole/checkpoints/step_00000008.h5" "$tmp/damaged/checkpoints/"
cp "$tmp/flip.h5" "$tmp/damaged/checkpoints/step_00000010.h5"
/usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('$tmp/damaged/checkpoints/step_00000010.h5', 'a'); f.attrs['step'] = np.int64(10)"
run "${mpi[@]}" -np 2 "$bin" train "${args[@]}" --run.name damaged --resume latest
grep -q "warning: --resume latest passes over $tmp/damaged/checkpoints/step_00000010.h5: cannot read .*/model/wte" "$tmp/log" &&
  grep -q "resuming after step 8 from $tmp/damaged/checkpoints/step_00000008.h5" "$tmp/log" ||
  { echo "FAIL: --resume latest did not pass over the damaged checkpoint"; cat "$tmp/log"; exit 1; }
[ "$(grep -c "warning: " "$tmp/log")" -eq 1 ] || { echo "FAIL: not one warning"; cat "$tmp/log"; exit 1; }
echo "ok: $(grep warning "$tmp/log" | cut -c1-150)..."
echo "all resume cases passed"
