#!/usr/bin/env bash
# tools/export_hf.py: a dense checkpoint loads in Hugging Face transformers as GPT2LMHeadModel, and
# Switch (with tokens dropped by capacity), GShard and hash checkpoints through the exported
# modeling file (trust_remote_code); each gives `moetrain eval`'s validation loss on the same
# windows within 1e-4 relative. transformers comes from PyPI into a venv over Debian's torch, made
# once at VENV (skipped, exit 77, where PyPI cannot be reached).
# usage: export_hf.sh MOETRAIN TESTDATA_DIR VENV
set -euo pipefail
bin=$1 data=$2 venv=$3
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/tests/common.sh"
source "$here/tests/py_venv.sh"
py_venv "$venv" transformers==4.44.2 transformers
py=$venv/bin/python
args=(--data.dir "$data/slice" --run.results_dir "$tmp" --model.seq_len 32 --model.d_model 32
      --model.n_layer 2 --model.n_head 2 --model.d_ff 64 --train.batch_size 8 --train.steps 200
      --train.eval_batches 2 --train.lr 3e-3)
check() {  # check NAME CLASS TRAIN-FLAGS...
  local name=$1 class=$2
  shift 2
  "$bin" train "${args[@]}" --run.name "$name" "$@" >/dev/null
  local ckpt=$tmp/$name/checkpoint.h5 ours theirs
  "$py" "$here/tools/export_hf.py" "$ckpt" "$tmp/hf_$name"
  "$py" -c "import sys, transformers as t
m = t.AutoModelForCausalLM.from_pretrained(sys.argv[1], trust_remote_code=True)
assert type(m).__name__ == sys.argv[2], type(m).__name__" "$tmp/hf_$name" "$class"
  ours=$("$bin" eval --checkpoint "$ckpt" --batches 3 | grep -o 'loss [0-9.]*' | cut -d' ' -f2)
  theirs=$("$py" "$here/tools/torch_eval.py" "$ckpt" --batches 3 --hf "$tmp/hf_$name" |
    grep -o 'loss [0-9.]*' | cut -d' ' -f2)
  echo "$name: moetrain $ours, transformers ($class) $theirs"
  /usr/bin/python3 -c "import sys; a, b = float('$ours'), float('$theirs'); sys.exit(abs(a - b) > 1e-4 * abs(b))" ||
    { echo "FAIL: $name: the exported model's loss differs"; exit 1; }
}
check dense GPT2LMHeadModel
check switch MoetrainForCausalLM --moe.experts 4 --moe.every 1 --moe.eval_capacity_factor 0.25
check gshard MoetrainForCausalLM --moe.experts 4 --moe.every 2 --moe.gate gshard
check hash MoetrainForCausalLM --moe.experts 4 --moe.every 1 --moe.gate hash
echo "ok: the exported models give moetrain's loss in transformers"
