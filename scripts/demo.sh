#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, prepares the bundled corpus
# (once) and trains the demo MoE GPT (8 experts over 4 MPI ranks), printing progress; results
# go to results/demo_moe/. Extra arguments are passed to `moetrain train` (e.g. --train.steps 100).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MOETRAIN_TESTS=${MOETRAIN_TESTS:-OFF} bash scripts/build.sh
[ -s data/raw/train.txt ] || /usr/bin/python3 tools/extract_corpus.py data/raw
[ -s data/sword/train.h5 ] ||
  ./build/moetrain prepare --input data/raw --output data/sword --vocab_size 4096 2> >(grep -v 'LOG(INFO)' >&2)

RANKS=${RANKS:-4}
mpi=(mpirun -np "$RANKS" --oversubscribe --bind-to none -x OMP_NUM_THREADS -x OMPI_MCA_mpi_yield_when_idle)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
# One OpenMP thread per rank when the ranks outnumber the cores; ranks yield while they wait.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) >= RANKS ? $(nproc) / RANKS : 1 ))}
export OMPI_MCA_mpi_yield_when_idle=1
echo "+ ${mpi[*]} build/moetrain train --config configs/demo_moe.ini $*"
"${mpi[@]}" build/moetrain train --config configs/demo_moe.ini "$@"
"${mpi[@]}" build/moetrain eval --checkpoint results/demo_moe/checkpoint.h5 --split test
