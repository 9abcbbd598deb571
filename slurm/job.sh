#!/usr/bin/env bash
# The body both batch scripts run inside their allocation (slurm/cpu.sbatch, slurm/gpu.sbatch):
# starts `moetrain train` with the given launcher, writing to $RESULTS_DIR/$RUN_NAME (defaults:
# results, the job name) and resuming from the run's latest checkpoint when one exists. On the
# preemption signal (USR1 or TERM) it forwards the signal to the run, which checkpoints after its
# step and exits 0, and requeues the job (`scontrol requeue`) unless the run had finished.
# MOETRAIN=PATH names the binary (default: build/moetrain under the submit directory).
#   slurm/job.sh LAUNCHER-WORDS... -- CONFIG [moetrain train flags...]
set -euo pipefail
launcher=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do launcher+=("$1"); shift; done
[ $# -ge 2 ] || { echo "usage: slurm/job.sh LAUNCHER... -- CONFIG [flags...]" >&2; exit 2; }
shift
config=$1
shift
run_name=${RUN_NAME:-$SLURM_JOB_NAME}
results_dir=${RESULTS_DIR:-results}
run_dir=$results_dir/$run_name
resume=()
if [ -e "$run_dir/checkpoint.h5" ] || ls "$run_dir"/checkpoints/*.h5 >/dev/null 2>&1; then
  resume=(--resume latest)
fi
cmd=("${launcher[@]}" "${MOETRAIN:-build/moetrain}" train --config "$config" --run.name "$run_name"
     --run.results_dir "$results_dir" "${resume[@]}" "$@")
echo "+ ${cmd[*]}  (job $SLURM_JOB_ID, restart ${SLURM_RESTART_COUNT:-0})"
"${cmd[@]}" &
pid=$!
preempted=0
trap 'preempted=1; kill -USR1 $pid' USR1 TERM
set +e
wait $pid
rc=$?
# wait returns early when the trap fires: wait again for the run to checkpoint and exit.
[ $preempted -eq 1 ] && { wait $pid; rc=$?; }
set -e
trap - USR1 TERM
if [ $preempted -eq 1 ] && [ ! -e "$run_dir/checkpoint.h5" ]; then
  echo "preempted: checkpointed, requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID"
  exit 0
fi
exit $rc
