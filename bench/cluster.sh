#!/usr/bin/env bash
# The exchanges over a real network: nodes made on this machine by tests/cluster_local.sh (one
# network namespace per node, MPI over TCP between them), every node's link limited by tc tbf.
# At each rate and node count: raw MPI_Alltoallv, moetrain's flat and hierarchical all-to-all
# (`moetrain bench a2a`, 16 KiB to 4 MiB per peer); at 2 nodes, the MoE demo's step time and
# the bytes that crossed the links per step, for Switch and Gating Dropout (p 0.1 and 0.2, both
# modes), at 64 sequences a step and dropless (every step exchanges every token: early in
# training the capacity drops most of them). Appends the tables to results/bench/cluster.md,
# where bench/cluster_model.py reads them to fit and project. Root; needs build/moetrain and the
# prepared corpus (data/sword).
# usage: bench/cluster.sh [REPS] [STEPS] [RATES] [NODES]   defaults: 8 6 "10gbit 2gbit 500mbit" "2 4"
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-8} steps=${2:-6} rates=${3:-10gbit 2gbit 500mbit} node_counts=${4:-2 4}
export MT_CLUSTER=mtcbench MT_CLUSTER_NET=10.80.0
cluster=tests/cluster_local.sh
tmp=$(mktemp -d)
trap '"$cluster" down >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
"$cluster" down
mkdir -p results/bench
md=results/bench/cluster.md
# link_bytes: the bytes every node has sent into the bridge so far (host ends' receive counters).
link_bytes() {
  local sum=0
  for f in /sys/class/net/${MT_CLUSTER}v*/statistics/rx_bytes; do sum=$((sum + $(cat "$f"))); done
  echo $sum
}
run_mpi() {  # run_mpi NODES CMD...: 2 ranks on each node
  local n=$1
  shift
  mpirun --hostfile "$MT_HOSTFILE" --map-by ppr:2:node --bind-to none -np $((2 * n)) \
    -x OMP_NUM_THREADS=1 $([ "$(id -u)" -eq 0 ] && echo --allow-run-as-root) "$@"
}
train_bytes() {  # train_bytes STEPS ARGS...: the MoE demo on the 2 nodes; the link bytes it took
  local n=$1 before
  shift
  before=$(link_bytes)
  run_mpi 2 build/moetrain train --config configs/demo_moe.ini --train.steps "$n" \
    --train.log_every "$n" --train.eval_every 0 --train.eval_batches 1 --train.warmup 1 \
    --train.batch_size 64 --moe.dropless true \
    --run.results_dir "$tmp/runs" --run.name run --run.overwrite true "$@" >"$tmp/train.log"
  echo $(($(link_bytes) - before))
}
echo "## $(date '+%Y-%m-%d %H:%M') bench/cluster.sh $reps $steps \"$rates\" \"$node_counts\" ($(nproc) cores)" | tee -a "$md"
for rate in $rates; do
  for n in $node_counts; do
    ( "$cluster" up "$n" "$rate" 2 >"$tmp/env"
      source "$tmp/env"
      echo "### link $rate, $n nodes x 2 ranks"
      echo '```'
      run_mpi "$n" build/moetrain bench a2a --config configs/demo_moe.ini --steps "$reps" 
      echo '```'
      "$cluster" down >/dev/null ) | tee -a "$md"
  done
  # The MoE demo on 2 nodes: step time and link bytes per step, Switch and Gating Dropout.
  ( "$cluster" up 2 "$rate" 2 >"$tmp/env"
    source "$tmp/env"
    echo '```'
    printf '%-26s %10s %14s %14s\n' "run ($rate, 2 nodes x 2)" "step ms" "link MB/step" "a2a MB/step"
    for variant in "switch" "gd 0.1 gate_drop" "gd 0.2 gate_drop" "gd 0.1 gate_expert_drop" \
      "gd 0.2 gate_expert_drop"; do
      set -- $variant
      extra=()
      [ "$1" = gd ] && extra=(--gd.p "$2" --gd.mode "$3")
      # The link bytes of a step: those of the run less those of a 1-step run (start, final
      # validation and checkpoint alike), over the steps between.
      one=$(train_bytes 1 "${extra[@]}") all=$(train_bytes "$steps" "${extra[@]}")
      /usr/bin/python3 - "$tmp/runs/run/results.h5" "$variant" "$(( (all - one) / (steps - 1) ))" <<'PY'
import sys, h5py, numpy as np
path, variant, link = sys.argv[1:]
with h5py.File(path, "r") as f:  # the first step warms up
    step_ms, a2a = 1e3 * np.mean(f["train/step_s"][1:]), np.mean(f["train/a2a_bytes"][1:])
print(f"{variant:<26} {step_ms:10.1f} {int(link) / 1e6:14.2f} {a2a / 1e6:14.2f}")
PY
    done
    echo '```'
    "$cluster" down >/dev/null ) | tee -a "$md"
done
