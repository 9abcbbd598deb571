#!/usr/bin/env bash
# A full disk, on a 1000 KB tmpfs the test mounts (a checkpoint of this model is 678 KB): the
# second periodic checkpoint does not fit, on 1 rank and on 2; then the disk fills while a 2-rank
# run appends its results. Each time every rank prints one message naming the file and the
# system's reason, the run exits 2 (not a crash), no temporary file stays, and what was written
# before stays readable: the previous checkpoint evaluates, the results hold the flushed rows,
# every series the same steps.
# Exit 77 (skipped) where this process cannot mount a tmpfs (not root, or no CAP_SYS_ADMIN).
# usage: full_disk.sh MOETRAIN TESTDATA_DIR
set -uo pipefail
bin=$1 data=$2
source "$(dirname "$0")/common.sh"
disk=$tmp/disk
mkdir "$disk"
mount -t tmpfs -o size=1000k tmpfs "$disk" 2>"$tmp/mount.err" ||
  { echo "cannot mount a tmpfs here ($(cat "$tmp/mount.err")): skipped"; exit 77; }
trap 'umount "$disk"; rm -rf "$tmp"' EXIT
args=(train --data.dir "$data/slice" --run.results_dir "$disk" --model.seq_len 32 --model.d_model 32
      --model.n_layer 1 --model.n_head 2 --model.d_ff 64 --train.batch_size 4 --train.eval_every 0)
failures=0
fail() { echo "FAIL: $*"; tail -5 "$tmp/log" | sed 's/^/  | /'; failures=$((failures + 1)); }
# expect RANKS PATTERN: the last run exited 2 and each rank printed one error line, rank 0 PATTERN
expect() {
  local ranks=$1 pattern=$2
  [ "$rc" -eq 2 ] || fail "exit code $rc, want 2"
  [ "$(grep -c "error: " "$tmp/log")" -eq "$ranks" ] || fail "not one error line per rank"
  grep -qE "$pattern" "$tmp/log" || fail "no message matching '$pattern'"
  grep -q "Segmentation fault\|signal 11" "$tmp/log" && fail "a crash"
  echo "ok: $(grep -E "$pattern" "$tmp/log" | head -1)"
}

for ranks in 1 2; do
  run=ckpt$ranks
  launcher=()
  [ $ranks -eq 2 ] && launcher=("${mpi[@]}" -np 2)
  timeout 60 "${launcher[@]}" "$bin" "${args[@]}" --run.name $run --train.steps 6 \
    --train.checkpoint_every 2 >"$tmp/log" 2>&1
  rc=$?
  ck=$disk/$run/checkpoints
  expect $ranks "error: checkpoint $ck/step_00000004.h5: $ck/step_00000004.h5.tmp: .*\(No space left on device\)"
  [ $ranks -eq 2 ] && { grep -q "rank 1: error: checkpoint $ck/step_00000004.h5: writing failed on rank 0" "$tmp/log" || fail "rank 1 did not report"; }
  [ "$(ls "$ck")" = "step_00000002.h5" ] || fail "$ck holds $(ls "$ck"), want step_00000002.h5 alone"
  "$bin" eval --checkpoint "$ck/step_00000002.h5" --batches 1 >"$tmp/eval" 2>&1 ||
    { cp "$tmp/eval" "$tmp/log"; fail "the previous checkpoint does not evaluate"; }
  echo "ok: $(cut -c1-100 "$tmp/eval")..."
  rm -rf "${disk:?}/$run"
done

# The disk fills while the results grow (a new chunk of rows every 256 steps).
timeout 120 "${mpi[@]}" -np 2 "$bin" "${args[@]}" --run.name res --train.steps 100000 \
  --train.log_every 1 >"$tmp/log" 2>&1 &
job=$!
# Step 2's progress line comes after step 1's rows were flushed (each step prints, then flushes).
for _ in $(seq 300); do grep -q "^step 2/" "$tmp/log" && break; sleep 0.1; done
dd if=/dev/zero of="$disk/fill" bs=4k >/dev/null 2>&1  # until the disk is full
wait $job
rc=$?
# Whichever of the run's two logs meets the full disk first (results.h5, metrics.jsonl) is named.
expect 2 "rank 0: error: $disk/res/(results.h5|metrics.jsonl): .*No space left on device"
grep -qE "rank 1: error: $disk/res/(results.h5|metrics.jsonl): .*No space left on device" "$tmp/log" || fail "rank 1 did not name the file"
rm -f "$disk/fill"
/usr/bin/python3 -c "
import h5py
with h5py.File('$disk/res/results.h5', 'r', swmr=True) as f:
    n = f['train/loss'].shape[0]
    assert n >= 1 and list(f['train/step'][()]) == list(range(n)), n
    # A flush that failed took back the rows it had given the series before it: all agree.
    lengths = {k: d.shape[0] for k, d in f['train'].items()}
    assert set(lengths.values()) == {n}, lengths
    print(f'ok: results.h5 readable after the failure, {n} rows')
" || fail "results.h5 unreadable after the failure"
# metrics.jsonl: whole lines only, a line for each step results.h5 flushed (or all but the last).
/usr/bin/python3 -c "
import json, h5py
lines = open('$disk/res/metrics.jsonl').read().splitlines()
steps = [json.loads(l)['step'] for l in lines]  # every line whole
with h5py.File('$disk/res/results.h5', 'r', swmr=True) as f:
    n = f['train/loss'].shape[0]
assert steps == list(range(1, len(steps) + 1)) and len(steps) in (n - 1, n), (steps[-3:], n)
print(f'ok: metrics.jsonl holds {len(steps)} whole lines after the failure ({n} rows in results.h5)')
" || fail "metrics.jsonl damaged by the failure"
[ -z "$(find "$disk" -name '*.tmp')" ] || fail "temporary files stayed: $(find "$disk" -name '*.tmp')"

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all full-disk cases stopped cleanly"
