#!/usr/bin/env bash
# Bounded waits on MPI (dist.timeout_s 3): one rank of a run hangs, by the test-only fault hook
# (MOETRAIN_FAULT_HANG=RANK:STEP, outside MPI) on 2 and on 4 ranks, or by SIGSTOP under mpirun.
# A waiting rank prints the collective, the group, the step and the rank that did not answer, and
# the job ends non-zero within the timeout plus 10 s of the hang, with no process left behind.
# usage: hang.sh MOETRAIN TESTDATA_DIR
set -uo pipefail
bin=$1 data=$2
source "$(dirname "$0")/common.sh"
args=(train --data.dir "$data/slice" --run.results_dir "$tmp" --model.seq_len 32 --model.d_model 32
      --model.n_layer 2 --model.n_head 2 --model.d_ff 64 --moe.experts 4 --moe.every 1
      --train.batch_size 8 --train.steps 100000 --train.eval_every 0 --dist.timeout_s 3)
failures=0
fail() { echo "FAIL: $*"; grep -v "^step" "$tmp/log" | head -20 | sed 's/^/  | /'; failures=$((failures + 1)); }
# finish NAME HUNG_RANK: waits for the job (started in the background as $job) to end, at most 13 s
# after the hang began at $hung (seconds since the epoch), and checks its report.
finish() {
  local name=$1 rank=$2
  wait $job
  local rc=$? took=$(( $(date +%s) - hung ))
  [ $rc -ne 0 ] || fail "$name: exit code 0"
  [ $took -le 13 ] || fail "$name: the job ended $took s after the hang (want <= 13)"
  grep -qE "rank [0-9]+: error: no progress for [0-9]+ s in MPI_[A-Za-z]+ of group '[a-z_]+' at step [0-9]+ \(after [0-9]+ collectives; dist.timeout_s 3\): rank $rank did not answer" "$tmp/log" ||
    fail "$name: no report naming rank $rank"
  pgrep -f "run.name $name" >/dev/null && { fail "$name: processes left"; pkill -9 -f "run.name $name"; }
  echo "ok: $name: exit $rc, $took s after the hang: $(grep -o "error: no progress.*" "$tmp/log" | head -1)"
}

for np in 2 4; do
  name=hook$np
  hang=$((np - 1))
  MOETRAIN_FAULT_HANG=$hang:5 timeout 120 "${mpi[@]}" -np $np -x MOETRAIN_FAULT_HANG "$bin" "${args[@]}" \
    --run.name $name >"$tmp/log" 2>&1 &
  job=$!
  for _ in $(seq 600); do grep -q "MOETRAIN_FAULT_HANG: hanging" "$tmp/log" && break; sleep 0.1; done
  hung=$(date +%s)
  finish $name $hang
done

name=stopped
timeout 120 "${mpi[@]}" -np 2 "$bin" "${args[@]}" --run.name $name --train.log_every 1 >"$tmp/log" 2>&1 &
job=$!
for _ in $(seq 600); do grep -q "^step *20/" "$tmp/log" && break; sleep 0.1; done
victim=
for p in $(pgrep -f "moetrain train .*--run.name $name"); do  # rank 1's process, by its environment
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && victim=$p
done
[ -n "$victim" ] || { echo "FAIL: no rank 1 process"; exit 1; }
kill -STOP "$victim"
hung=$(date +%s)
finish $name 1

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "every hang ended the job within the timeout plus 10 s, naming the rank waited on"
