#!/usr/bin/env bash
# Reading results.h5 while a 2-rank run writes it: a reader in SWMR mode (h5py swmr=True) polls
# and sees the rows grow, step by step, in order; a plain reader that holds the file open (the
# way a notebook would) does not stop the run; the run finishes with every row.
# usage: live_results.sh MOETRAIN TESTDATA_DIR
set -euo pipefail
bin=$1 data=$2
source "$(dirname "$0")/common.sh"
steps=150
args=(train --data.dir "$data/slice" --run.results_dir "$tmp" --run.name live --model.seq_len 32
      --model.d_model 32 --model.n_layer 2 --model.n_head 2 --model.d_ff 64 --moe.experts 4
      --moe.every 1 --train.batch_size 8 --train.steps $steps --train.log_every 3
      --train.eval_every 50 --train.eval_batches 1)
timeout 300 "${mpi[@]}" -np 2 "$bin" "${args[@]}" >"$tmp/log" 2>&1 &
run=$!
/usr/bin/python3 - "$tmp/live/results.h5" "$run" >"$tmp/reader" 2>&1 <<'PY' || { cat "$tmp/reader"; exit 1; }
import os, sys, time, h5py, numpy as np
path, pid = sys.argv[1], int(sys.argv[2])
def alive():
    return os.path.exists(f"/proc/{pid}")
seen, plain = [], "not tried"
deadline = time.time() + 240
while alive() and time.time() < deadline:
    if os.path.exists(path):
        try:
            with h5py.File(path, "r", swmr=True) as f:
                if "train/loss" not in f:  # (a file that declares its series late)
                    continue
                steps, loss = f["train/step"][()], f["train/loss"][()]
                n = min(len(steps), len(loss))
                assert list(steps[:n]) == list(range(n)), "steps out of order"
                assert np.isfinite(loss[:n]).all(), "a row that is not a number"
                seen.append(n)
        except OSError as e:
            print("swmr open failed:", e)
        if plain == "not tried" and seen and seen[-1] > 10:
            try:  # h5py's default mode, held for a while
                f = h5py.File(path, "r"); time.sleep(2); f.close(); plain = "opened"
            except OSError as e:
                plain = f"refused ({e})"
    time.sleep(0.05)
grew = sorted(set(seen))
print(f"reader: {len(seen)} reads, {len(grew)} different row counts, "
      f"from {grew[0] if grew else None} to {grew[-1] if grew else None}; plain reader {plain}")
assert seen == sorted(seen), "rows shrank"
assert len(grew) >= 3, "the reader did not see the rows grow"
assert plain != "not tried", "the plain reader never ran"
PY
cat "$tmp/reader"
wait $run || { echo "FAIL: the run failed beside the readers"; cat "$tmp/log"; exit 1; }
/usr/bin/python3 -c "
import h5py
with h5py.File('$tmp/live/results.h5', 'r') as f:  # closed cleanly: a plain open works
    assert f['train/loss'].shape == ($steps,), f['train/loss'].shape
    assert f['valid/ppl'].shape == (3,), f['valid/ppl'].shape
"
echo "ok: the run finished with $steps rows while both readers read"
