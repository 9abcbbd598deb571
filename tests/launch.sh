#!/usr/bin/env bash
# The launch wrappers: each prints the mpirun line it runs; launch/local.sh trains on 2 ranks;
# launch/multinode.sh with a one-machine hostfile runs 2 "nodes" x 2 ranks, and its hierarchical
# all-to-all (as the run's banner says) gives the same loss curve, bitwise, as the flat one.
# Both run the binary MOETRAIN names (here a copy of the one ctest built, outside any build/).
# usage: launch.sh SOURCE_DIR MOETRAIN TESTDATA_DIR
set -euo pipefail
src=$1 data=$3
source "$(dirname "$0")/common.sh"
mkdir "$tmp/bin" && cp "$2" "$tmp/bin/moetrain"
export MOETRAIN=$tmp/bin/moetrain
args=(train --data.dir "$data/slice" --run.results_dir "$tmp" --model.seq_len 32 --model.d_model 32
      --model.n_layer 2 --model.n_head 2 --model.d_ff 64 --moe.experts 4 --moe.every 1
      --train.batch_size 8 --train.steps 5 --train.eval_batches 1)
timeout 120 "$src/launch/local.sh" -n 2 "${args[@]}" --run.name local >"$tmp/log" 2>&1
grep -q "^+ mpirun -np 2 .*OMP_NUM_THREADS=.* $MOETRAIN train" "$tmp/log"
grep -q "2 cpu ranks (1 node x 2)" "$tmp/log"
echo "ok: launch/local.sh -n 2"
printf 'localhost slots=4\n' >"$tmp/hosts"
for a2a in flat hierarchical; do
  timeout 120 "$src/launch/multinode.sh" -H "$tmp/hosts" -p 2 "${args[@]}" --run.name "$a2a" \
    --dist.a2a "$a2a" >"$tmp/log" 2>&1
  grep -q "^+ mpirun -np 4 --hostfile $tmp/hosts .* $MOETRAIN train .* --dist.ranks_per_node 2" "$tmp/log"
  grep -q "4 cpu ranks (2 nodes x 2), ep_size 4" "$tmp/log"
  grep -q "flat all-to-all\|hierarchical all-to-all" "$tmp/log"
  grep -q "$a2a all-to-all" "$tmp/log"  # the run says which exchange it uses
done
/usr/bin/python3 -c "
import h5py, numpy as np
fa, fb = h5py.File('$tmp/flat/results.h5'), h5py.File('$tmp/hierarchical/results.h5')
a, b = fa['train/loss'][()], fb['train/loss'][()]
assert a.shape == (5,) and np.array_equal(a, b), (a, b)
# The two-stage exchange forwards rows through a second stage: more bytes leave rank 0.
assert (fb['train/a2a_bytes'][()] > fa['train/a2a_bytes'][()]).all(), 'hierarchical exchange unused'
"
echo "ok: launch/multinode.sh as 2 nodes x 2: hierarchical equals flat bitwise"
