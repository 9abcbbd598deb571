#!/usr/bin/env bash
# Runs one fuzz target: every input that once failed it (regressions/NAME) once, then libFuzzer
# for SECONDS from the committed seeds (corpus/NAME), new inputs kept under WORK/NAME.
# usage: run.sh FUZZER FUZZ_DIR NAME WORK SECONDS
set -euo pipefail
bin=$1 dir=$2 name=$3 work=$4/$3 seconds=$5
rm -rf "$work" && mkdir -p "$work/corpus"
if compgen -G "$dir/regressions/$name/*" >/dev/null; then
  "$bin" "$dir/regressions/$name"/*
fi
"$bin" -max_total_time="$seconds" -seed=1 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" "$dir/corpus/$name"
