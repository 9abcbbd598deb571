#!/usr/bin/env bash
# tools/tensorboard_log.py: TensorBoard's own reader (tensorboard from PyPI, in a venv made once at
# VENV; skipped, exit 77, where PyPI cannot be reached) finds every step of a 2-rank MoE run's
# loss, gradient norm, validation loss and routing series at the 1-based steps, with the values of
# results.h5 (float32); with --follow, started before the run, it tails the live file and returns
# once the run has ended, with every step.
# usage: tensorboard.sh MOETRAIN TESTDATA_DIR VENV
set -euo pipefail
bin=$1 data=$2 venv=$3
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/tests/common.sh"
source "$here/tests/py_venv.sh"
py_venv "$venv" tensorboard tensorboard
py=$venv/bin/python
args=(train --data.dir "$data/slice" --run.results_dir "$tmp" --model.seq_len 32 --model.d_model 32
      --model.n_layer 2 --model.n_head 2 --model.d_ff 64 --moe.experts 4 --moe.every 2
      --train.batch_size 8 --train.log_every 1 --train.eval_every 10 --train.eval_batches 2)
check() {  # check RUN LOGDIR STEPS: the event files against results.h5
  "$py" - "$tmp/$1/results.h5" "$2" "$3" <<'PY'
import sys, h5py, numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
results, logdir, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
acc = EventAccumulator(logdir, size_guidance={"scalars": 0})
acc.Reload()
with h5py.File(results, "r") as f:
    for tag, step_key in (("train/loss", "train/step"), ("train/grad_norm", "train/step"),
                          ("valid/loss", "valid/step"),
                          ("routing/block1/dropped", "train/step")):
        events = acc.Scalars(tag)
        want_steps = list(f[step_key][()].astype(int) + 1)
        assert [e.step for e in events] == want_steps, (tag, [e.step for e in events][:5], want_steps[:5])
        want = f[tag][()].astype(np.float32)
        assert np.array_equal(np.array([e.value for e in events], dtype=np.float32), want), tag
    assert len(acc.Scalars("train/loss")) == steps
    assert "routing/block1/load_max_over_mean" in acc.Tags()["scalars"]
print(f"ok: TensorBoard reads {len(acc.Tags()['scalars'])} scalars, {steps} steps, as results.h5 holds them")
PY
}
mpi+=(-np 2)
timeout 120 "${mpi[@]}" "$bin" "${args[@]}" --run.name once --train.steps 30 >/dev/null
"$py" "$here/tools/tensorboard_log.py" "$tmp/once/results.h5" "$tmp/tb_once"
check once "$tmp/tb_once" 30
# --follow from before the run starts until after it ends.
timeout 300 "$py" "$here/tools/tensorboard_log.py" "$tmp/live/results.h5" "$tmp/tb_live" --follow \
  --interval 0.5 >"$tmp/follow.log" &
follower=$!
timeout 120 "${mpi[@]}" "$bin" "${args[@]}" --run.name live --train.steps 300 >/dev/null
timeout 30 tail --pid=$follower -f /dev/null || { echo "FAIL: --follow did not return after the run"; exit 1; }
wait $follower
cat "$tmp/follow.log"
check live "$tmp/tb_live" 300
