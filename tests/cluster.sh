#!/usr/bin/env bash
# A real network in the tests: 2 nodes x 2 ranks on this machine (tests/cluster_local.sh, one
# network namespace per node, MPI over TCP between them). Every method on every ep_size equals
# one rank and the hierarchical exchange delivers what the flat one does (test_dist over the
# cluster); moetrain finds the 2 nodes without dist.ranks_per_node, through launch/multinode.sh
# unchanged; a hierarchical run trains bitwise as a flat one; and `down` leaves nothing. Skipped (exit 77) where network
# namespaces cannot be made.
# usage: cluster.sh SOURCE_DIR MOETRAIN TESTDATA_DIR TEST_DIST
set -euo pipefail
src=$1 bin=$2 data=$3 test_dist=$4
source "$src/tests/common.sh"
export MT_CLUSTER=mtctest MT_CLUSTER_NET=10.78.0  # apart from a cluster a user made by hand
cluster=$src/tests/cluster_local.sh
"$cluster" down
if ! "$cluster" up 2 >"$tmp/env" 2>"$tmp/up.err"; then
  echo "SKIP: cannot make the network namespaces: $(head -1 "$tmp/up.err")"
  exit 77
fi
trap '"$cluster" down; rm -rf "$tmp"' EXIT
source "$tmp/env"
cl=(mpirun --hostfile "$MT_HOSTFILE" --map-by ppr:2:node --bind-to none -x OMP_NUM_THREADS=1)
[ "$(id -u)" -eq 0 ] && cl+=(--allow-run-as-root)

echo "== test_dist on 2 nodes x 2 ranks, over TCP"
timeout 300 "${cl[@]}" -np 4 "$test_dist" --gtest_color=no >"$tmp/dist.log" 2>&1 ||
  { tail -40 "$tmp/dist.log"; echo "FAIL: test_dist across the nodes"; exit 1; }
grep -E "^\[  PASSED  \]" "$tmp/dist.log"

args=(train --data.dir "$data/slice" --run.results_dir "$tmp/results" --model.seq_len 32
      --model.d_model 32 --model.n_layer 2 --model.n_head 2 --model.d_ff 64 --moe.experts 4
      --moe.every 1 --train.batch_size 8 --train.steps 6 --train.log_every 1 --train.eval_every 6)
for a2a in flat hierarchical; do
  echo "== launch/multinode.sh, $a2a"
  MOETRAIN=$bin timeout 120 "$src/launch/multinode.sh" -H "$MT_HOSTFILE" -p 2 -- \
    "${args[@]}" --dist.a2a $a2a --run.name $a2a >"$tmp/$a2a.log" 2>&1 ||
    { cat "$tmp/$a2a.log"; echo "FAIL: training across the nodes ($a2a)"; exit 1; }
  grep -q "4 cpu ranks (2 nodes x 2)" "$tmp/$a2a.log" ||
    { cat "$tmp/$a2a.log"; echo "FAIL: the 2 nodes were not detected"; exit 1; }
done
grep "cpu ranks" "$tmp/hierarchical.log"
/usr/bin/python3 - "$tmp/results" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
with h5py.File(f"{d}/flat/results.h5") as a, h5py.File(f"{d}/hierarchical/results.h5") as b:
    for k in ("train/loss", "train/grad_norm", "valid/loss", "routing/block0/load"):
        assert np.array_equal(a[k][()], b[k][()]), f"hierarchical differs from flat in {k}"
    assert b["train/a2a_calls"][()].sum() > 0
print("ok: hierarchical equals flat bitwise over TCP (loss, gradient norm, validation, load)")
PY
"$cluster" down
if ip netns list | grep -q "^$MT_CLUSTER" || ip link show | grep -q "$MT_CLUSTER"; then
  echo "FAIL: cluster_local.sh down left namespaces or links behind"; exit 1
fi
echo "ok: cluster (and down removed its namespaces and links)"
