#!/usr/bin/env bash
# ctest fixture: the test corpus, a fixed slice (the first 1 MB of each split) of the real corpus.
# usage: prepare_slice.sh SOURCE_DIR MOETRAIN OUT_DIR
set -euo pipefail
src=$1 bin=$2 out=$3
[ -s "$out/raw/train.txt" ] || /usr/bin/python3 "$src/tools/extract_corpus.py" "$out/raw"
"$bin" prepare --input "$out/raw" --output "$out/slice" --vocab_size 1024 --max_bytes 1000000 \
  2> >(grep -v 'LOG(INFO)' >&2)
