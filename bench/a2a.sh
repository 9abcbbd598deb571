#!/usr/bin/env bash
# All-to-all benchmark at 4 ranks, as 1 node x 4 and as 2 nodes x 2 (--dist.ranks_per_node):
# raw MPI_Alltoallv against moetrain's flat and hierarchical exchanges on the same bytes, in one
# run each. Output is appended to results/bench/a2a.md.
# usage: bench/a2a.sh [CONFIG] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/demo_moe.ini} reps=${2:-20}
mpi=(mpirun -np 4 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
mkdir -p results/bench
{
  echo "## $(date '+%Y-%m-%d %H:%M') bench/a2a.sh $config $reps ($(nproc) cores)"
  for rpn in 4 2; do
    echo '```'
    "${mpi[@]}" build/moetrain bench a2a --config "$config" --steps "$reps" --dist.ranks_per_node "$rpn"
    echo '```'
  done
} | tee -a results/bench/a2a.md
