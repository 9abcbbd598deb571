#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, prepares the bundled corpus
# (once) and trains the demo model, printing progress; results go to results/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
[ -s data/raw/train.txt ] || /usr/bin/python3 tools/extract_corpus.py data/raw
[ -s data/sword/train.h5 ] ||
  ./build/moetrain prepare --input data/raw --output data/sword --vocab_size 4096 2> >(grep -v 'LOG(INFO)' >&2)
./build/moetrain train --config configs/demo.ini "$@"
./build/moetrain eval --checkpoint results/demo/checkpoint.h5 --split test
