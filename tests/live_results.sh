#!/usr/bin/env bash
# Reading results.h5 while a 2-rank run writes it: a reader in SWMR mode (h5py swmr=True) polls
# and sees the rows grow, step by step, in order; a plain reader that holds the file open (the
# way a notebook would) does not stop the run; the run finishes with every row, and its progress
# lines show what the results hold.
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
# The progress lines against the results: the loss shown is the cross-entropy, aux beside it,
# the dropped share (of the recorded choices) and the most unequal block's max/mean load.
/usr/bin/python3 - "$tmp/log" "$tmp/live/results.h5" <<'PY' || { grep -v '^step' "$tmp/log"; exit 1; }
import re, sys, h5py, numpy as np
log, path = open(sys.argv[1]).read(), sys.argv[2]
assert "config | [moe] experts = 4, every = 1" in log, "the configuration is not printed"
line = re.compile(r"step +(\d+)/150 \| loss ([\d.]+) \| aux ([\d.]+) \| lr \S+ \| norm \S+ \| "
                  r"(\d+) ms \| +(\d+) tok/s \| MFU ([\d.]+)% \| drop ([\d.]+)% \| load ([\d.]+) \| "
                  r"(\d+) MB \| ETA \S+ \| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
rows = [m.groups() for m in map(line.match, log.splitlines()) if m]
assert len(rows) >= 50, f"{len(rows)} progress lines in the expected form"
with h5py.File(path, "r") as f:
    ce, aux = f["train/ce"][()], f["train/aux"][()]
    dropped = sum(f[f"routing/block{b}/dropped"][()] for b in (0, 1))
    loads = [f[f"routing/block{b}/load"][()] for b in (0, 1)]
    choices = [f[f"routing/block{b}/choices"][()] for b in (0, 1)]
assert all((c == 256).all() for c in choices), choices  # 256 tokens a step, one choice each
for step, loss, a, ms, tps, mfu, drop, load, mb in rows:
    i = int(step) - 1
    assert abs(float(loss) - ce[i]) <= 5e-5, (step, loss, ce[i])
    assert abs(float(a) - aux[i]) <= 5e-5, (step, a, aux[i])
    assert abs(float(drop) - 100 * dropped[i] / sum(c[i] for c in choices)) <= 0.05, (step, drop, dropped[i])
    ratio = max(l[i].max() * 4 / l[i].sum() for l in loads)
    assert abs(float(load) - ratio) <= 5e-3, (step, load, ratio)
    assert abs(256e3 / float(tps) - float(ms)) <= 0.5 + 1e-2 * float(ms), (ms, tps)
    assert 0 < float(mfu) < 150 and 10 < int(mb) < 4000, (mfu, mb)
print(f"ok: {len(rows)} progress lines match the results")
PY
echo "ok: the run finished with $steps rows while both readers read"
