#!/usr/bin/env bash
# kill -9 in the middle of a run that writes a checkpoint at every step: the newest finished
# checkpoint stays loadable (written under a temporary name, then renamed), the results file stays
# readable with its curves, and the run resumes. Three kills at different moments; a killed
# writer's .tmp goes with the next checkpoint; h5dump shows the documented layout. Then one rank
# of a 2-rank job killed: the job ends, bounded, with a message, and resumes.
# usage: crash.sh MOETRAIN TESTDATA_DIR
set -uo pipefail
bin=$1 data=$2
source "$(dirname "$0")/common.sh"
trap 'kill -9 $pid 2>/dev/null; rm -rf "$tmp"' EXIT
pid=
args=(--data.dir "$data/slice" --run.results_dir "$tmp" --run.name run --model.seq_len 64
      --model.d_model 128 --model.n_layer 2 --model.n_head 2 --model.d_ff 512 --moe.experts 4
      --moe.every 1 --train.batch_size 4 --train.steps 400 --train.checkpoint_every 1
      --train.keep_checkpoints 2 --train.log_every 1 --train.eval_every 0 --train.eval_batches 1)
for delay in 2.3 1.7 2.9; do
  resume=()
  [ -d "$tmp/run/checkpoints" ] && resume=(--resume latest)
  OMP_NUM_THREADS=1 "$bin" train "${args[@]}" "${resume[@]}" >"$tmp/log" 2>&1 &
  pid=$!
  # The kill comes `delay` s after the round's first progress line, not after its start (which a
  # sanitized build makes slow): each round resumes and trains before it is killed.
  for ((i = 0; i < 1200; i++)); do grep -q '^step' "$tmp/log" && break; sleep 0.1; done
  sleep "$delay"
  kill -9 $pid
  wait $pid 2>/dev/null
  if [ ${#resume[@]} -gt 0 ]; then
    grep -q "moetrain: resuming after step" "$tmp/log" || { echo "FAIL: no resume"; cat "$tmp/log"; exit 1; }
  fi
  ls "$tmp/run/checkpoints" | tr '\n' ' '
  latest=$(ls "$tmp/run/checkpoints"/*.h5 | sort | tail -1)
  "$bin" inspect "$latest" | head -2 | tail -1 || { echo "FAIL: $latest does not load"; exit 1; }
  # Rows are flushed after each progress line: the file holds the last step printed, the one
  # before it when the kill fell between the line and its flush, or (if HDF5 evicted its cache on
  # its own) the one after.
  printed=$(grep -o '^step *[0-9]*' "$tmp/log" | tail -1 | grep -o '[0-9]*$')
  /usr/bin/python3 -c "
import h5py, sys
with h5py.File('$tmp/run/results.h5', 'r', swmr=True) as f:  # a killed writer leaves it marked open
    n = f['train/loss'].shape[0]
    assert f['train/step'].shape[0] == n, 'series of different lengths'
    assert n in ($printed - 1, $printed, $printed + 1), f'{n} rows after step $printed was printed'
    assert list(f['train/step'][()]) == list(range(n)), 'steps are not 0..n-1'
    print(f'results.h5 readable after the crash: {n} steps of /train/loss, step $printed printed')
" || { echo "FAIL: results.h5 unreadable or short after kill -9"; exit 1; }
done
# The run continues from the newest finished checkpoint, and its first checkpoint removes what a
# writer killed before its rename left.
head -c 1000 /dev/urandom >"$tmp/run/checkpoints/step_00000001.h5.tmp"
timeout 120 "$bin" train "${args[@]}" --train.steps "$(( $("$bin" inspect "$latest" | grep -o 'step [0-9]*' | head -1 | cut -d' ' -f2) + 2 ))" --resume latest >"$tmp/log" 2>&1 ||
  { echo "FAIL: resume after the crashes"; cat "$tmp/log"; exit 1; }
grep "resuming after step" "$tmp/log"
! ls "$tmp/run/checkpoints/"*.tmp 2>/dev/null || { echo "FAIL: a killed writer's .tmp stayed"; exit 1; }
h5dump -n "$tmp/run/checkpoint.h5" >"$tmp/layout"
for object in /model/wte /model/wpe /model/lnf/gamma /model/blocks/0/ln1/beta \
  /model/blocks/0/attn/qkv/w /model/blocks/1/attn/proj/b /model/blocks/0/moe/gate/w \
  /model/blocks/1/moe/experts/fc1/w /model/blocks/1/moe/experts/fc2/b /optim/wte/m \
  /optim/blocks/0/moe/experts/fc2/w/v /scheduler; do
  grep -q " $object\$" "$tmp/layout" || { echo "FAIL: h5dump shows no $object"; exit 1; }
done
echo "h5dump shows the documented layout"

# One rank of a 2-rank job killed: the whole job ends within 30 s with a message naming the rank,
# and the newest checkpoint resumes.
mpi+=(-np 2)
margs=("${args[@]}" --run.name ranks --train.steps 1000000 --train.checkpoint_every 20 --train.log_every 1000)
"${mpi[@]}" "$bin" train "${margs[@]}" >"$tmp/ranks.log" 2>&1 &
pid=$!
for _ in $(seq 60); do ls "$tmp/ranks/checkpoints/"*.h5 >/dev/null 2>&1 && break; sleep 0.5; done
victim=$(pgrep -f "$bin train .*--run.name ranks" | grep -vx $pid | tail -1)
kill -9 "$victim"
start=$(date +%s)
timeout 30 tail --pid=$pid -f /dev/null || { echo "FAIL: the job did not end within 30 s"; exit 1; }
wait $pid
rc=$?
[ $rc -ne 0 ] && grep -q "exited on signal 9" "$tmp/ranks.log" ||
  { echo "FAIL: rc $rc, no message"; cat "$tmp/ranks.log"; exit 1; }
echo "ok: a killed rank ended the job in $(( $(date +%s) - start )) s (rc $rc): $(grep -o 'process rank [0-9]* .*signal 9' "$tmp/ranks.log")"
n=$("$bin" inspect "$(ls "$tmp/ranks/checkpoints/"*.h5 | sort | tail -1)" | grep -o 'step [0-9]*' | head -1 | cut -d' ' -f2)
timeout 120 "${mpi[@]}" "$bin" train "${args[@]}" --run.name ranks --train.steps $((n + 2)) --resume latest >"$tmp/log" 2>&1 ||
  { echo "FAIL: resume after the killed rank"; cat "$tmp/log"; exit 1; }
echo "ok: resumed after step $n on 2 ranks"
echo "crash cases passed"
