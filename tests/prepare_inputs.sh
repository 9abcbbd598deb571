#!/usr/bin/env bash
# moetrain prepare from an existing tokenizer and from ids made elsewhere: --tokenizer with the
# slice's model gives the slice's token files id for id, trains no model and copies it bitwise;
# the slice's ids written as raw uint16 and int32 .bin files (nanoGPT's format) give the same ids
# with --vocab_size or --tokenizer, and a model trains on them as on the slice, bitwise. (Bad .bin
# input is in cli_errors.)
# usage: prepare_inputs.sh MOETRAIN TESTDATA_DIR
set -euo pipefail
bin=$1 data=$2
source "$(dirname "$0")/common.sh"
quiet() { "$@" 2> >(grep -v 'LOG(INFO)' >&2); }
quiet "$bin" prepare --input "$data/raw" --output "$tmp/reused" --tokenizer "$data/slice/tokenizer.model" \
  --max_bytes 1000000 >"$tmp/reused.log"
! grep -q 'training a' "$tmp/reused.log" || { echo "FAIL: --tokenizer trained a model"; exit 1; }
cmp "$data/slice/tokenizer.model" "$tmp/reused/tokenizer.model"
echo "ok: --tokenizer trains none and copies the model"
mkdir "$tmp/bin"
/usr/bin/python3 - "$data/slice" "$tmp/bin" <<'PY'
import sys, h5py, numpy as np
for split in ("train", "valid", "test"):
    with h5py.File(f"{sys.argv[1]}/{split}.h5", "r") as f:
        ids = f["tokens"][()]
    ids.astype("<u2").tofile(f"{sys.argv[2]}/{split}.u16")
    ids.astype("<i4").tofile(f"{sys.argv[2]}/{split}.i32")
PY
mkdir "$tmp/in_uint16" "$tmp/in_int32"
for split in train valid test; do
  ln -s "$tmp/bin/$split.u16" "$tmp/in_uint16/$split.bin"
  ln -s "$tmp/bin/$split.i32" "$tmp/in_int32/$split.bin"
done
"$bin" prepare --input "$tmp/in_uint16" --output "$tmp/u16" --tokens uint16 --vocab_size 1024 >/dev/null
quiet "$bin" prepare --input "$tmp/in_int32" --output "$tmp/i32" --tokens int32 \
  --tokenizer "$data/slice/tokenizer.model" >/dev/null
[ ! -e "$tmp/u16/tokenizer.model" ] && cmp "$data/slice/tokenizer.model" "$tmp/i32/tokenizer.model"
/usr/bin/python3 - "$data/slice" "$tmp/reused" "$tmp/u16" "$tmp/i32" <<'PY'
import sys, h5py, numpy as np
want, *dirs = sys.argv[1:]
for split in ("train", "valid", "test"):
    with h5py.File(f"{want}/{split}.h5", "r") as f:
        ids, vocab = f["tokens"][()], f.attrs["vocab_size"]
    for d in dirs:
        with h5py.File(f"{d}/{split}.h5", "r") as g:
            assert np.array_equal(g["tokens"][()], ids), (d, split)
            assert g.attrs["vocab_size"] == vocab == 1024, (d, split, g.attrs["vocab_size"])
print("ok: --tokenizer, --tokens uint16 --vocab_size and --tokens int32 --tokenizer give the slice's ids")
PY
train() {  # train DIR: the loss column of two steps on a small dense model
  "$bin" train --data.dir "$1" --run.results_dir "$tmp/runs" --run.name "$(basename "$1")" \
    --model.seq_len 32 --model.d_model 32 --model.n_layer 1 --model.n_head 2 --model.d_ff 64 \
    --train.batch_size 4 --train.steps 2 --train.log_every 1 --train.eval_every 0 --train.eval_batches 1 |
    grep '^step ' | cut -d'|' -f2
}
want=$(train "$data/slice") got=$(train "$tmp/u16")
[ "$(grep -c loss <<<"$want")" -eq 2 ] && [ "$got" = "$want" ] ||
  { echo "FAIL: training on the uint16 ids printed '$got', on the slice '$want'"; exit 1; }
echo "ok: training on the prepared uint16 ids gives the slice's losses:" $want
