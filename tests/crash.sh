#!/usr/bin/env bash
# kill -9 in the middle of a run that writes a checkpoint at every step: the newest finished
# checkpoint stays loadable (written under a temporary name, then renamed), the results file stays
# readable with its curves, and the run resumes. Three kills at different moments; h5dump shows
# the documented layout.
# usage: crash.sh MOETRAIN TESTDATA_DIR
set -uo pipefail
bin=$1 data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; kill -9 $pid 2>/dev/null' EXIT
pid=
args=(--data.dir "$data/slice" --run.results_dir "$tmp" --run.name run --model.seq_len 64
      --model.d_model 128 --model.n_layer 2 --model.n_head 2 --model.d_ff 512 --moe.experts 4
      --moe.every 1 --train.batch_size 4 --train.steps 400 --train.checkpoint_every 1
      --train.keep_checkpoints 2 --train.log_every 1 --train.eval_every 0 --train.eval_batches 1)
for delay in 2.3 1.7 2.9; do
  resume=()
  [ -d "$tmp/run/checkpoints" ] && resume=(--resume latest)
  OMP_NUM_THREADS=1 "$bin" train "${args[@]}" "${resume[@]}" >"$tmp/log" 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 $pid
  wait $pid 2>/dev/null
  ls "$tmp/run/checkpoints" | tr '\n' ' '
  latest=$(ls "$tmp/run/checkpoints"/*.h5 | sort | tail -1)
  "$bin" inspect "$latest" | head -2 | tail -1 || { echo "FAIL: $latest does not load"; exit 1; }
  /usr/bin/python3 -c "
import h5py, sys
with h5py.File('$tmp/run/results.h5', 'r') as f:
    n = f['train/loss'].shape[0]
    assert n > 0 and f['train/step'].shape[0] == n, 'no curve'
    print(f'results.h5 readable after the crash: {n} steps of /train/loss')
" || { echo "FAIL: results.h5 unreadable after kill -9"; exit 1; }
done
# The run continues from the newest finished checkpoint.
timeout 120 "$bin" train "${args[@]}" --train.steps "$(( $("$bin" inspect "$latest" | grep -o 'step [0-9]*' | head -1 | cut -d' ' -f2) + 2 ))" --resume latest >"$tmp/log" 2>&1 ||
  { echo "FAIL: resume after the crashes"; cat "$tmp/log"; exit 1; }
grep "resuming after step" "$tmp/log"
h5dump -n "$tmp/run/checkpoint.h5" >"$tmp/layout"
for object in /model/wte /model/wpe /model/lnf/gamma /model/blocks/0/ln1/beta \
  /model/blocks/0/attn/qkv/w /model/blocks/1/attn/proj/b /model/blocks/0/moe/gate/w \
  /model/blocks/1/moe/experts/fc1/w /model/blocks/1/moe/experts/fc2/b /optim/wte/m \
  /optim/blocks/0/moe/experts/fc2/w/v /scheduler; do
  grep -q " $object\$" "$tmp/layout" || { echo "FAIL: h5dump shows no $object"; exit 1; }
done
echo "h5dump shows the documented layout; crash cases passed"
