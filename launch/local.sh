#!/usr/bin/env bash
# Runs moetrain on N ranks of this machine and prints the mpirun line it runs.
#   launch/local.sh [-n RANKS] [--gpu] [--] moetrain-arguments...
# CPU (default): RANKS defaults to the number of cores; each rank gets cores/RANKS OpenMP
# threads, bound to its share of the cores when RANKS <= cores (otherwise unbound, one thread
# each, ranks yielding while they wait). --gpu: one rank per visible GPU (local rank -> GPU) and
# the NCCL environment (NCCL_DEBUG=WARN unless set).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# The binary: MOETRAIN=PATH, else the checkout's build/, else the installed one (PREFIX/bin, as
# `cmake --install` lays out PREFIX/share/moetrain/launch).
bin=${MOETRAIN:-$here/build/moetrain}
[ -n "${MOETRAIN:-}" ] || [ -x "$bin" ] || bin=$(cd "$here/../.." && pwd)/bin/moetrain
cores=$(nproc)
ranks=
gpu=0
while [ $# -gt 0 ]; do
  case $1 in
    -n) ranks=$2; shift 2 ;;
    --gpu) gpu=1; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
if [ $gpu -eq 1 ]; then
  gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
  [ "$gpus" -gt 0 ] || { echo "launch/local.sh: --gpu, but nvidia-smi sees no GPU" >&2; exit 2; }
  ranks=${ranks:-$gpus}
  export NCCL_DEBUG=${NCCL_DEBUG:-WARN}
fi
ranks=${ranks:-$cores}
threads=$(( cores >= ranks ? cores / ranks : 1 ))
mpi=(mpirun -np "$ranks" -x OMP_NUM_THREADS="$threads" -x OMPI_MCA_mpi_yield_when_idle=1)
[ $gpu -eq 1 ] && mpi+=(-x NCCL_DEBUG)
if [ "$ranks" -le "$cores" ]; then
  mpi+=(--map-by "slot:PE=$threads" --bind-to core)
else
  mpi+=(--oversubscribe --bind-to none)
fi
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
echo "+ ${mpi[*]} $bin $*"
exec "${mpi[@]}" "$bin" "$@"
