#!/usr/bin/env bash
# moetrain generate on a small trained Switch MoE (seq_len 16; evaluation capacity 0.5, so tokens
# drop), its prompt longer than the window: each new token's log-probability equals PyTorch's
# (tools/torch_eval.py --generated: float64, from the file layout alone) within 1e-3, sampled
# and greedy, and greedy picks the most likely token; a seed repeats its text, another seed
# changes it; 2 ranks at ep_size 2 and 1 give one rank's tokens; the checkpoint's own tokenizer
# serves with no data directory, and one without it takes the data directory's.
# usage: generate.sh MOETRAIN TESTDATA_DIR
set -euo pipefail
bin=$1 data=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
timeout 120 "$bin" train --data.dir "$data/slice" --run.results_dir "$tmp" --run.name g \
  --model.seq_len 16 --model.d_model 32 --model.n_layer 2 --model.n_head 2 --model.d_ff 64 \
  --moe.experts 4 --moe.every 2 --moe.eval_capacity_factor 0.5 --train.batch_size 8 \
  --train.steps 200 --train.lr 3e-3 --train.eval_every 0 >/dev/null
ckpt=$tmp/g/checkpoint.h5
prompt="And God said unto Moses, Go in, and speak unto Pharaoh king of Egypt"
gen() {  # gen OUT [LAUNCHER...] -- [FLAGS...]: the text and the ids line
  local out=$1
  shift
  local launcher=()
  while [ "$1" != "--" ]; do launcher+=("$1"); shift; done
  shift
  timeout 120 "${launcher[@]}" "$bin" generate --checkpoint "$ckpt" --prompt "$prompt" --tokens 30 \
    --ids --data.dir /nonexistent "$@" >"$out"
}
ids() { grep '^generate: ids' "$1" | sed 's/^generate: ids //'; }
gen "$tmp/greedy" --
gen "$tmp/sampled" -- --temperature 1 --top_k 50 --seed 5
head -n 1 "$tmp/sampled"
/usr/bin/python3 "$here/../tools/torch_eval.py" "$ckpt" --generated "$(ids "$tmp/greedy")" --greedy
/usr/bin/python3 "$here/../tools/torch_eval.py" "$ckpt" --generated "$(ids "$tmp/sampled")"
new() { ids "$1" | cut -d'|' -f2; }
[ "$(new "$tmp/greedy")" != "$(new "$tmp/sampled")" ] || { echo "FAIL: sampling gave the greedy text"; exit 1; }
[ "$(ids "$tmp/sampled" | cut -d'|' -f2 | wc -w)" = 30 ] || { echo "FAIL: not 30 new tokens"; exit 1; }
gen "$tmp/again" -- --temperature 1 --top_k 50 --seed 5
cmp -s "$tmp/sampled" "$tmp/again" || { echo "FAIL: the same seed gave another text"; exit 1; }
gen "$tmp/other" -- --temperature 1 --top_k 50 --seed 6
[ "$(new "$tmp/sampled")" != "$(new "$tmp/other")" ] || { echo "FAIL: seed 6 gave seed 5's text"; exit 1; }
echo "ok: greedy and sampled tokens follow PyTorch's model; a seed repeats, another differs"
for ep in 2 1; do
  gen "$tmp/two" "${mpi[@]}" -np 2 -- --temperature 1 --top_k 50 --seed 5 --dist.ep_size $ep
  [ "$(new "$tmp/two")" = "$(new "$tmp/sampled")" ] || { echo "FAIL: 2 ranks (ep $ep) differ"; exit 1; }
done
echo "ok: 2 ranks at ep_size 2 and 1 give one rank's tokens"
# A checkpoint without its tokenizer (as written before checkpoints held one) takes data.dir's.
cp "$ckpt" "$tmp/old.h5"
/usr/bin/python3 -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); del f['tokenizer']" "$tmp/old.h5"
timeout 120 "$bin" generate --checkpoint "$tmp/old.h5" --prompt "$prompt" --tokens 30 --ids \
  --data.dir "$data/slice" >"$tmp/old"
cmp -s "$tmp/old" "$tmp/greedy" || { echo "FAIL: data.dir's tokenizer gave another text"; exit 1; }
echo "ok: the checkpoint's tokenizer needs no data directory; without it data.dir's serves"
