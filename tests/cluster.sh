#!/usr/bin/env bash
# A real network in the tests: 2 nodes x 2 ranks on this machine (tests/cluster_local.sh, one
# network namespace per node, MPI over TCP between them). Every method on every ep_size equals
# one rank and the hierarchical exchange delivers what the flat one does (test_dist over the
# cluster); moetrain finds the 2 nodes without dist.ranks_per_node, through launch/multinode.sh
# unchanged; a hierarchical run trains bitwise as a flat one; slurm/cpu.sbatch runs across the
# 2 nodes under a Slurm of one slurmd per node (mpirun and srun); a checkpoint from the 2 nodes
# resumes on 1 node and on 4; a node's link cut and a rank on the
# other node killed with kill -9 each end the job within dist.timeout_s + 10 s with a message;
# and `down` leaves nothing. Skipped (exit 77) where network
# namespaces cannot be made.
# usage: cluster.sh SOURCE_DIR MOETRAIN TESTDATA_DIR TEST_DIST
set -euo pipefail
src=$1 bin=$2 data=$3 test_dist=$4
source "$src/tests/common.sh"
export MT_CLUSTER=mtctest MT_CLUSTER_NET=10.78.0  # apart from a cluster a user made by hand
cluster=$src/tests/cluster_local.sh
four() { MT_CLUSTER=mtctest4 MT_CLUSTER_NET=10.79.0 "$cluster" "$@"; }  # 4 nodes, for a resume
"$cluster" down
four down
if ! "$cluster" up 2 >"$tmp/env" 2>"$tmp/up.err"; then
  echo "SKIP: cannot make the network namespaces: $(head -1 "$tmp/up.err")"
  exit 77
fi
trap '"$cluster" down; four down; rm -rf "$tmp"' EXIT
source "$tmp/env"
cl=(mpirun --hostfile "$MT_HOSTFILE" --map-by ppr:2:node --bind-to none -x OMP_NUM_THREADS=1)
[ "$(id -u)" -eq 0 ] && cl+=(--allow-run-as-root)

echo "== test_dist on 2 nodes x 2 ranks, over TCP"
timeout 300 "${cl[@]}" -np 4 "$test_dist" --gtest_color=no >"$tmp/dist.log" 2>&1 ||
  { tail -40 "$tmp/dist.log"; echo "FAIL: test_dist across the nodes"; exit 1; }
grep -E "^\[  PASSED  \]" "$tmp/dist.log"

args=(train --data.dir "$data/slice" --run.results_dir "$tmp/results" --model.seq_len 32
      --model.d_model 32 --model.n_layer 2 --model.n_head 2 --model.d_ff 64 --moe.experts 4
      --moe.every 1 --train.batch_size 8 --train.steps 6 --train.log_every 1 --train.eval_every 6
      --train.eps 1e-6)  # eps: as test_dist's, so that gradients zero but for rounding stay silent
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
    assert a.attrs["hosts"] == b"mtctest-node1,mtctest-node2", a.attrs["hosts"]
print("ok: hierarchical equals flat bitwise over TCP (loss, gradient norm, validation, load); "
      "results.h5 names both nodes' hosts")
PY
# Slurm across the nodes (where it is installed): one slurmd per node, in the node's namespace
# (tests/slurm_local.sh with SLURM_CLUSTER); slurm/cpu.sbatch on 2 nodes x 2 tasks, its ranks
# started by mpirun (through srun to the other node) and by srun --mpi=pmix, each the flat
# run's curve bitwise.
if command -v slurmctld >/dev/null && command -v sbatch >/dev/null; then
  echo "== slurm/cpu.sbatch on 2 nodes x 2 tasks"
  export SLURM_DIR=$tmp/slurm SLURM_CLUSTER=/tmp/$MT_CLUSTER
  trap 'bash "$src/tests/slurm_local.sh" down; "$cluster" down; four down; rm -rf "$tmp"' EXIT
  conf=$(bash "$src/tests/slurm_local.sh" up) || { echo "FAIL: slurm across the nodes did not start"; exit 1; }
  eval "$conf"
  : >"$tmp/empty.ini"
  for launcher in mpirun srun; do
    (cd "$src" && LAUNCHER=$launcher MOETRAIN=$bin RESULTS_DIR=$tmp/results RUN_NAME=sbatch_$launcher \
      timeout 180 sbatch --wait --nodes 2 --ntasks-per-node 2 --cpus-per-task 1 --overcommit \
      --output="$tmp/sbatch_$launcher.out" slurm/cpu.sbatch "$tmp/empty.ini" "${args[@]:1}" \
      >/dev/null) || { cat "$tmp/sbatch_$launcher.out"; echo "FAIL: the $launcher job across the nodes"; exit 1; }
    grep -q "4 cpu ranks (2 nodes x 2)" "$tmp/sbatch_$launcher.out" ||
      { cat "$tmp/sbatch_$launcher.out"; echo "FAIL: the $launcher job did not run on 2 nodes x 2"; exit 1; }
  done
  /usr/bin/python3 - "$tmp/results" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
flat = h5py.File(f"{d}/flat/results.h5")["train/loss"][()]
for launcher in ("mpirun", "srun"):
    with h5py.File(f"{d}/sbatch_{launcher}/results.h5") as f:
        assert np.array_equal(f["train/loss"][()], flat), f"the {launcher} job's curve differs"
        assert f.attrs["hosts"] == b"mtctest-node1,mtctest-node2", f.attrs["hosts"]
        job = f.attrs["slurm_job_id"].decode()
    print(f"ok: sbatch slurm/cpu.sbatch ({launcher}, job {job}) on mtctest-node1,mtctest-node2: "
          "the flat run's curve bitwise")
PY
  bash "$src/tests/slurm_local.sh" down >/dev/null || { echo "FAIL: a Slurm daemon outlived down"; exit 1; }
  trap '"$cluster" down; four down; rm -rf "$tmp"' EXIT
else
  echo "(Slurm is not installed: the batch scripts across the nodes are not run)"
fi
# A checkpoint written on the 2 nodes (after step 3 of the 6) resumes on 1 node (1 rank, shared
# memory only) and on 4 nodes x 1 rank (a second cluster), each to the flat run's curve and
# parameters within float tolerance (the layouts sum in other orders).
echo "== a checkpoint from 2 nodes resumes on 1 node and on 4"
MOETRAIN=$bin timeout 120 "$src/launch/multinode.sh" -H "$MT_HOSTFILE" -p 2 -- "${args[@]}" \
  --run.name cut1 --train.run_steps 3 >"$tmp/cut.log" 2>&1 ||
  { cat "$tmp/cut.log"; echo "FAIL: the first 3 steps across the nodes"; exit 1; }
cp -r "$tmp/results/cut1" "$tmp/results/cut4"
(unset OMPI_MCA_plm_rsh_agent OMPI_MCA_btl_tcp_if_include OMPI_MCA_oob_tcp_if_include
 OMPI_MCA_btl=self,vader timeout 120 "$bin" "${args[@]}" --run.name cut1 --resume latest) \
  >"$tmp/cut1.log" 2>&1 || { cat "$tmp/cut1.log"; echo "FAIL: the resume on 1 node"; exit 1; }
four up 4 "" 1 >"$tmp/env4"
(source "$tmp/env4"
 MOETRAIN=$bin timeout 120 "$src/launch/multinode.sh" -H "$MT_HOSTFILE" -p 1 -- "${args[@]}" \
   --run.name cut4 --resume latest) >"$tmp/cut4.log" 2>&1 ||
  { cat "$tmp/cut4.log"; echo "FAIL: the resume on 4 nodes"; exit 1; }
four down
grep -q "1 cpu rank (1 node x 1)" "$tmp/cut1.log" && grep -q "4 cpu ranks (4 nodes x 1)" "$tmp/cut4.log" ||
  { cat "$tmp/cut1.log" "$tmp/cut4.log"; echo "FAIL: the resumes did not run where meant"; exit 1; }
/usr/bin/python3 - "$tmp/results" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
def read(run):
    with h5py.File(f"{d}/{run}/results.h5") as r, h5py.File(f"{d}/{run}/checkpoint.h5") as c:
        out = {}
        c.visit(lambda n: out.__setitem__(n, c[n][()]) if n.startswith("model/") and isinstance(c[n], h5py.Dataset) else None)
        return r["train/loss"][()], out
loss, params = read("flat")
for run in ("cut1", "cut4"):
    l, p = read(run)
    rel = np.abs(l - loss) / np.abs(loss)
    assert l.shape == (6,) and np.array_equal(l[:3], loss[:3]) and rel.max() < 1e-6, f"{run}: loss {rel}"
    worst = max(np.linalg.norm(p[k] - params[k]) / max(np.linalg.norm(params[k]), 1e-30) for k in params)
    assert worst < 1e-5, f"{run}: parameters differ by {worst}"
    print(f"ok: {run}: the first 3 steps bitwise, loss within {rel.max():.1e}, parameters within {worst:.1e}")
PY
# Faults across the network: a long run (dist.timeout_s 8) meets one `what` after its first
# progress line; every rank must end, the job with a non-zero exit within 8 + 10 s, its log
# holding `want`. mpirun gives up on a daemon it cannot reach after 4 s (LAUNCH_DAEMON_TIMEOUT,
# which must stay below dist.timeout_s: once a rank has called MPI_Abort, Open MPI 4.1's mpirun
# waits on an unreachable daemon for ever).
fault() {
  local name=$1 what=$2 want=$3 log=$tmp/$1.log
  LAUNCH_DAEMON_TIMEOUT=4 MOETRAIN=$bin timeout 120 "$src/launch/multinode.sh" -H "$MT_HOSTFILE" \
    -p 2 -- "${args[@]}" --train.steps 100000 --train.log_every 20 --train.eval_every 0 \
    --dist.timeout_s 8 --run.name "$name" >"$log" 2>&1 &
  local job=$!
  for _ in $(seq 600); do grep -q '^step' "$log" && break; sleep 0.1; done
  grep -q '^step' "$log" || { cat "$log"; echo "FAIL: $name: the run did not start"; exit 1; }
  local t0=$SECONDS
  eval "$what"
  local rc=0
  wait $job || rc=$?
  local took=$((SECONDS - t0))
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$log"; echo "FAIL: $name: exit $rc"; exit 1; }
  [ $took -le 18 ] || { cat "$log"; echo "FAIL: $name: the job ended $took s after the fault"; exit 1; }
  grep -qE "$want" "$log" || { cat "$log"; echo "FAIL: $name: no '$want' in its output"; exit 1; }
  # Ranks on a cut-off node end on their own: within dist.timeout_s and its report.
  for _ in $(seq 150); do pgrep -f "run.name $name" >/dev/null || break; sleep 0.1; done
  ! pgrep -f "run.name $name" >/dev/null || { echo "FAIL: $name: a rank outlived the job"; exit 1; }
  echo "ok: $name: exit $rc, $took s after the fault: $(grep -E "$want" "$log" | head -1 | cut -c1-160)"
}
# Node 2's link down: mpirun loses node 2's daemon and ends the job, naming the node; node 2's
# ranks end on their own (dist.timeout_s).
fault link_cut "ip netns exec ${MT_CLUSTER}2 ip link set eth0 down" \
  "lost communication with a remote daemon"
grep -q "Remote daemon: .* on node $MT_CLUSTER_NET.2" "$tmp/link_cut.log" ||
  { echo "FAIL: link_cut: the message does not name node 2"; exit 1; }
ip netns exec ${MT_CLUSTER}2 ip link set eth0 up
# A rank on node 2 killed with kill -9.
fault kill_rank "kill -9 \$(ip netns pids ${MT_CLUSTER}2 | xargs -r ps -o pid=,args= -p | grep 'moetrain train' | head -1 | awk '{print \$1}')" \
  "exited on signal 9"

"$cluster" down
if ip netns list | grep -q "^$MT_CLUSTER" || ip link show | grep -q "$MT_CLUSTER"; then
  echo "FAIL: cluster_local.sh down left namespaces or links behind"; exit 1
fi
echo "ok: cluster (and down removed its namespaces and links)"
