#!/usr/bin/env bash
# A chaos soak: a small MoE (or SOAK_CONFIG's) trains on 2 nodes x 2 ranks (network namespaces,
# tests/cluster_local.sh) under a supervisor that, at a step drawn from SEED, kills a rank with
# kill -9, sends mpirun the preemption signal (SIGUSR1) or cuts a node's link, and restarts the job
# with --resume latest each time, as Slurm's requeue would. Each round trains one run to its last
# step through its faults; then every results series but the timings and every dataset of its
# final checkpoint must equal an uninterrupted run's bitwise. After every fault the job must end
# within dist.timeout_s + 10 s with no process left, and each checkpoint in the run folder must
# read whole (every dataset's Fletcher32 checksum); a round leaves no .tmp file. Rounds repeat,
# the fault kinds in shuffled threes, until MINUTES have passed; the log lists every fault, the
# step it hit, how long the job took to end and how long the recovery took (from the fault to the
# next job's first step). Skipped (exit 77) where network namespaces cannot be made (needs root).
# usage: tests/soak.sh MINUTES [SEED [MOETRAIN [TESTDATA_DIR]]]
#   SOAK_STEPS: steps per round (300); SOAK_CONFIG: a config whose model trains instead
set -euo pipefail
minutes=${1:?usage: soak.sh MINUTES [SEED [MOETRAIN [TESTDATA_DIR]]]} seed=${2:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${3:-$here/build/moetrain}") data=$(realpath "${4:-$here/build/testdata}")
source "$here/tests/common.sh"
export MT_CLUSTER=mtsoak MT_CLUSTER_NET=10.80.0  # apart from the cluster test's and a user's
cluster=$here/tests/cluster_local.sh
"$cluster" down
if ! "$cluster" up 2 >"$tmp/env" 2>"$tmp/up.err"; then
  echo "SKIP: cannot make the network namespaces: $(head -1 "$tmp/up.err")"
  exit 77
fi
trap 'pkill -9 -f "run.results_dir $tmp/results" || true; "$cluster" down; rm -rf "$tmp"' EXIT
source "$tmp/env"
RANDOM=$seed

steps=${SOAK_STEPS:-300}
timeout_s=8                # dist.timeout_s: a rank cut off ends on its own after it
bound=$((timeout_s + 10))  # a faulted job ends within this
# The model: SOAK_CONFIG's (e.g. configs/demo_moe.ini) or a small Switch MoE.
if [ -n "${SOAK_CONFIG:-}" ]; then
  model=(--config "$(realpath "$SOAK_CONFIG")")
else
  model=(--model.seq_len 64 --model.d_model 64 --model.n_layer 2 --model.n_head 2 --model.d_ff 256
         --moe.experts 4 --moe.every 1 --train.batch_size 16)
fi
args=(train "${model[@]}" --data.dir "$data/slice" --run.results_dir "$tmp/results"
      --train.steps "$steps" --train.log_every 1
      --train.eval_every 25 --train.eval_batches 2 --train.checkpoint_every 10
      --train.keep_checkpoints 3 --dist.timeout_s $timeout_s)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "soak: $*"; }
fail() { say "FAIL: $*"; exit 1; }
last_step() { grep -o '^step *[0-9]*' "$1" | tail -1 | grep -o '[0-9]*$' || echo none; }
resumed_at() { grep -o 'resuming after step [0-9]*' "$1" | grep -o '[0-9]*$' || echo 0; }
ranks_of() {  # the moetrain processes in node $1's namespace, by pid
  ip netns pids "${MT_CLUSTER}$1" | xargs -r ps -o pid=,args= -p | awk '/moetrain train/ {print $1}' | sort -n
}
gone() {  # waits up to $2 s for every process of run $1 to end
  for _ in $(seq $(($2 * 10))); do pgrep -f "run.name $1( |$)" >/dev/null || return 0; sleep 0.1; done
  return 1
}

# launch NAME LOG ARGS...: the job in the background (mpirun: launch/multinode.sh execs it).
launch() {
  local name=$1 log=$2
  shift 2
  LAUNCH_DAEMON_TIMEOUT=4 MOETRAIN=$bin "$here/launch/multinode.sh" -H "$MT_HOSTFILE" -p 2 -- \
    "${args[@]}" --run.name "$name" "$@" >"$log" 2>&1 &
  job=$!
}
reached() {  # reached LOG STEP: waits for the job's progress line of STEP; 1 when it ended first
  for _ in $(seq 6000); do
    [ "$(last_step "$1")" != none ] && [ "$(last_step "$1")" -ge "$2" ] && return 0
    kill -0 $job 2>/dev/null || return 1
    sleep 0.02
  done
  fail "no progress line of step $2 within 120 s: $(tail -3 "$1")"
}
ended() {  # ended SECONDS: waits for the job to end (its exit code in $rc); fails past SECONDS
  for _ in $(seq $(($1 * 20))); do
    kill -0 $job 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 $job 2>/dev/null; then
    kill -9 $job
    fail "$name: the job did not end within $1 s${what:+ of $what}: $(tail -2 "$log")"
  fi
  rc=0
  wait $job || rc=$?
}
checkpoints_whole() {  # every checkpoint of run folder $1 reads whole
  /usr/bin/python3 - "$1" <<'PY'
import glob, sys, h5py
for path in sorted(glob.glob(f"{sys.argv[1]}/checkpoints/*.h5")):
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: o[()] if isinstance(o, h5py.Dataset) else None)
PY
}

echo "== the uninterrupted run ($steps steps, 2 nodes x 2 ranks${SOAK_CONFIG:+, $SOAK_CONFIG})"
t=$(now)
name=whole log=$tmp/whole.log what=
launch whole "$log"
ended 600
[ $rc -eq 0 ] || { cat "$log"; fail "the uninterrupted run"; }
say "uninterrupted: $(since "$t") s"

kinds=()
draw_kind() {  # the next fault kind: shuffled threes
  if [ ${#kinds[@]} -eq 0 ]; then
    kinds=(kill9 preempt linkcut)
    for i in 2 1; do
      local j=$((RANDOM % (i + 1))) x=${kinds[$i]}
      kinds[$i]=${kinds[$j]} kinds[$j]=$x
    done
  fi
  kind=${kinds[0]}
  kinds=("${kinds[@]:1}")
}

deadline=$(awk -v m="$minutes" -v t="$(now)" 'BEGIN { printf "%.0f", t + 60 * m }')
faults=0 rounds=0 recovering=
while [ "$(date +%s)" -lt "$deadline" ]; do
  rounds=$((rounds + 1))
  name=r$rounds part=0
  echo "== round $rounds"
  while :; do
    part=$((part + 1))
    log=$tmp/$name.$part.log
    if ls "$tmp/results/$name/checkpoints/"*.h5 >/dev/null 2>&1; then
      launch $name "$log" --resume latest
    else  # stopped before its first checkpoint: from the start again
      launch $name "$log" --run.overwrite true
    fi
    what=
    reached "$log" 1 || true
    if [ -n "$recovering" ]; then
      say "  recovered in $(since "$recovering") s (fault to the next job's first step), $(grep -o 'resuming after step [0-9]*' "$log" || echo 'from the start')"
      recovering=
    fi
    # The fault's step: after this job's first, 10 or more before the last (a link cut while
    # mpirun tears a finished job down leaves it on TCP's retransmission timeout: docs/clusters.md).
    from=$(resumed_at "$log")
    draw_kind
    node=$((1 + RANDOM % 2)) pick=$((RANDOM % 2)) room=$((steps - 10 - from - 1))
    [ $room -gt 0 ] && [ "$(date +%s)" -lt "$deadline" ] || kind=none
    if [ $kind = none ] || ! reached "$log" $((from + 1 + RANDOM % room)); then
      ended 600
      [ $rc -eq 0 ] && grep -q "moetrain: done in" "$log" ||
        { cat "$log"; fail "$name: the job failed or stopped without a fault (exit $rc)"; }
      break
    fi
    at=$(last_step "$log")
    t0=$(now)
    case $kind in
      kill9)
        target=$(ranks_of $node | sed -n "$((pick + 1))p")
        [ -n "$target" ] && kill -9 "$target" 2>/dev/null || true
        what="kill -9 of a rank on node $node (pid ${target:-none})" ;;
      preempt)
        kill -USR1 $job 2>/dev/null || true
        what="SIGUSR1 to mpirun" ;;
      linkcut)
        ip netns exec "${MT_CLUSTER}$node" ip link set eth0 down
        what="node $node's link cut" ;;
    esac
    ended $bound
    took=$(since "$t0")
    [ $kind = linkcut ] && ip netns exec "${MT_CLUSTER}$node" ip link set eth0 up
    gone $name $((timeout_s + 5)) || fail "$name: a rank outlived its job after $what"
    faults=$((faults + 1))
    if [ $kind = preempt ]; then
      [ $rc -eq 0 ] && grep -q "stopped after step .* (preemption signal)" "$log" ||
        { cat "$log"; fail "$name: SIGUSR1 did not stop the job cleanly (exit $rc)"; }
      outcome="exit 0, $(grep -o 'stopped after step [0-9]*' "$log")"
    else
      [ $rc -ne 0 ] || { cat "$log"; fail "$name: exit 0 after $what"; }
      outcome="exit $rc"
    fi
    checkpoints_whole "$tmp/results/$name" || fail "$name: a damaged checkpoint after $what"
    say "fault $faults: $what at step $at: $outcome in $took s; checkpoints whole"
    recovering=$t0
  done
  /usr/bin/python3 - "$tmp/results/whole" "$tmp/results/$name" <<'PY' || fail "$name differs"
import sys, h5py, numpy as np
whole, run = sys.argv[1:3]
timing = {"train/tokens_per_s", "train/step_s", "train/a2a_s"}  # wall-clock series
def datasets(path, keep):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) and keep(n) else None)
    return out
a = datasets(f"{whole}/results.h5", lambda n: n not in timing)
b = datasets(f"{run}/results.h5", lambda n: n in a)
assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
for k in a:
    assert np.array_equal(a[k], b[k]), f"results {k} differs"
ca = datasets(f"{whole}/checkpoint.h5", lambda n: True)
cb = datasets(f"{run}/checkpoint.h5", lambda n: True)
assert ca.keys() == cb.keys() and all(np.array_equal(ca[k], cb[k]) for k in ca), "checkpoint differs"
print(f"soak: ok: {run.split('/')[-1]} equals the uninterrupted run bitwise ({len(a)} results series, "
      f"{len(ca)} checkpoint datasets)")
PY
  leftover=$(find "$tmp/results/$name" -name '*.tmp')
  [ -z "$leftover" ] || fail "$name left $leftover"
  rm -rf "${tmp:?}/results/$name"
done
[ $faults -gt 0 ] || fail "no fault in $minutes min"
say "ok: $faults faults over $rounds rounds in $minutes min (seed $seed); every round equals the uninterrupted run bitwise"
