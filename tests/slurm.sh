#!/usr/bin/env bash
# The batch scripts under a real single-node Slurm (started here, stopped by PID at the end, with
# two GPUs by count only): a plain 2-rank slurm/cpu.sbatch job (mpirun) writes its results; a
# slurm/gpu.sbatch job (srun --mpi=pmix, one rank per GPU, run on --device cpu here) gets the
# preemption signal, checkpoints, requeues itself, resumes and finishes with the same loss curve,
# bitwise, as an uninterrupted cpu.sbatch job; gpu.sbatch refuses tasks that do not match GPUs;
# every daemon the test started has exited at the end. The jobs run the binary MOETRAIN names
# (a copy of the one ctest built, outside any build/).
# Exit 77 (skipped) where Slurm is not installed.
# usage: slurm.sh SOURCE_DIR MOETRAIN TESTDATA_DIR
set -uo pipefail
src=$1 data=$3
command -v slurmctld >/dev/null && command -v sbatch >/dev/null ||
  { echo "slurm is not installed: skipped"; exit 77; }
source "$(dirname "$0")/common.sh"
mkdir "$tmp/bin" && cp "$2" "$tmp/bin/moetrain"
export SLURM_DIR=$tmp/slurm MOETRAIN=$tmp/bin/moetrain
trap 'bash "$src/tests/slurm_local.sh" down; rm -rf "$tmp"' EXIT
conf=$(bash "$src/tests/slurm_local.sh" up) || { echo "FAIL: slurm did not start"; exit 1; }
eval "$conf"
cd "$src"
args=(--data.dir "$data/slice" --model.seq_len 32 --model.d_model 32 --model.n_layer 2
      --model.n_head 2 --model.d_ff 64 --moe.experts 4 --moe.every 1 --train.batch_size 8
      --train.eval_every 0 --train.eval_batches 1 --train.log_every 500)
submit() {  # submit SCRIPT NAME STEPS [sbatch flags]: prints the job id
  local script=$1 name=$2 steps=$3
  shift 3
  RESULTS_DIR=$tmp RUN_NAME=$name sbatch --parsable --cpus-per-task 1 "$@" --output="$tmp/$name.out" \
    "$script" configs/demo_moe.ini "${args[@]}" --train.steps "$steps" --device cpu
}
cpu_job() { submit slurm/cpu.sbatch "$@" --ntasks 2 --overcommit; }
gpu_job() { submit slurm/gpu.sbatch "$@" --nodes 1 --gpus-per-node 2; }
gone() {  # gone JOB SECONDS: waits until the job has ended (a busy controller that does not answer
  # is not an ended job, nor is a requeued one, which goes back to PENDING)
  for _ in $(seq "$2"); do
    scontrol show job -o "$1" 2>/dev/null | grep -qE "JobState=(COMPLETED|FAILED|CANCELLED|TIMEOUT)" &&
      return 0
    sleep 1
  done
  return 1
}

job=$(cpu_job plain 40 --wait) || { echo "FAIL: plain job"; cat "$tmp/plain.out"; exit 1; }
/usr/bin/python3 - "$tmp/plain/results.h5" "$job" "$(hostname)" <<'PY' || { echo "FAIL: plain job results"; exit 1; }
import sys, h5py
f = h5py.File(sys.argv[1])
assert f["train/loss"].shape == (40,)
got = {k: f.attrs[k].decode() for k in ("slurm_job_id", "hosts", "start_time")}
assert got["slurm_job_id"] == sys.argv[2] and got["hosts"] == sys.argv[3], got
print(f"ok: results.h5 records the job: {got}")
PY
grep -q "^+ mpirun .* $MOETRAIN train" "$tmp/plain.out" || { echo "FAIL: the job did not run $MOETRAIN"; cat "$tmp/plain.out"; exit 1; }
echo "ok: sbatch slurm/cpu.sbatch on 2 tasks ran $MOETRAIN: 40 steps in $tmp/plain/results.h5"

gpu_job odd 40 --ntasks-per-node 1 --wait >/dev/null && { echo "FAIL: 1 task for 2 GPUs ran"; exit 1; }
grep -q "1 tasks per node but 2 GPUs per node" "$tmp/odd.out" || { echo "FAIL: no mismatch message"; cat "$tmp/odd.out"; exit 1; }
echo "ok: slurm/gpu.sbatch refuses 1 task for 2 GPUs"

job=$(gpu_job pre 4000 --ntasks-per-node 2)
for _ in $(seq 60); do grep -q "step *500/4000" "$tmp/pre.out" 2>/dev/null && break; sleep 0.5; done
scancel --signal=USR1 --batch "$job"
for _ in $(seq 60); do grep -q "requeueing job" "$tmp/pre.out" && break; sleep 1; done
grep -q "stopped after step [0-9]* of 4000 (preemption signal)" "$tmp/pre.out" &&
  grep -q "requeueing job $job" "$tmp/pre.out" || { echo "FAIL: no checkpoint-and-requeue"; cat "$tmp/pre.out"; exit 1; }
# A requeued job waits for its BeginTime (Slurm's requeue delay); let it start now.
for _ in $(seq 30); do squeue -h -j "$job" -o %r | grep -q BeginTime && break; sleep 1; done
scontrol update jobid="$job" StartTime=now
gone "$job" 120 || { echo "FAIL: the requeued job did not finish"; exit 1; }
grep -q "resuming after step" "$tmp/pre.out" || { echo "FAIL: the requeued job did not resume"; cat "$tmp/pre.out"; exit 1; }
grep -E "stopped after|requeueing|resuming after|done in" "$tmp/pre.out" | cut -c1-110

grep -q "+ srun --mpi=pmix" "$tmp/pre.out" || { echo "FAIL: gpu.sbatch did not use srun"; exit 1; }
cpu_job whole 4000 --wait >/dev/null || { echo "FAIL: uninterrupted job"; exit 1; }
/usr/bin/python3 -c "
import h5py, numpy as np
a = h5py.File('$tmp/pre/results.h5')['train/loss'][()]
b = h5py.File('$tmp/whole/results.h5')['train/loss'][()]
assert a.shape == b.shape == (4000,) and np.array_equal(a, b), 'curves differ'
print(f'ok: gpu.sbatch (srun) preempted, requeued and resumed: final loss {a[-1]:.6f}, curve equal to the uninterrupted job bitwise')
" || exit 1
bash "$src/tests/slurm_local.sh" down || { echo "FAIL: a daemon outlived slurm_local.sh down"; exit 1; }
echo "ok: every daemon the test started has exited"
