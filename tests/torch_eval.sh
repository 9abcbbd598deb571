#!/usr/bin/env bash
# tools/torch_eval.py (PyTorch, from the file layout alone) and `moetrain eval` agree on the
# validation loss of dense, Switch (with tokens dropped by capacity), GShard and hash checkpoints
# within 1e-4 relative.
# usage: torch_eval.sh MOETRAIN TESTDATA_DIR
set -euo pipefail
bin=$1 data=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$(dirname "$0")/common.sh"
args=(--data.dir "$data/slice" --run.results_dir "$tmp" --model.seq_len 32 --model.d_model 32
      --model.n_layer 2 --model.n_head 2 --model.d_ff 64 --train.batch_size 8 --train.steps 8
      --train.eval_batches 2 --train.lr 3e-3)
check() {
  local name=$1
  shift
  "$bin" train "${args[@]}" --run.name "$name" "$@" >/dev/null
  local ours theirs
  ours=$("$bin" eval --checkpoint "$tmp/$name/checkpoint.h5" --batches 3 | grep -o 'loss [0-9.]*' | cut -d' ' -f2)
  theirs=$(/usr/bin/python3 "$here/../tools/torch_eval.py" "$tmp/$name/checkpoint.h5" --batches 3 | grep -o 'loss [0-9.]*' | cut -d' ' -f2)
  echo "$name: moetrain $ours, pytorch $theirs"
  /usr/bin/python3 -c "import sys; a, b = float('$ours'), float('$theirs'); sys.exit(abs(a - b) > 1e-4 * abs(b))"
}
check dense
check switch --moe.experts 4 --moe.every 1 --moe.eval_capacity_factor 0.5
check gshard --moe.experts 4 --moe.every 2 --moe.gate gshard
check hash --moe.experts 4 --moe.every 1 --moe.gate hash
echo "pytorch and moetrain agree"
