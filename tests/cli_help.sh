#!/usr/bin/env bash
# Help and version through the real binary: -h and --help on every command (and bench's
# subcommands) exit 0 with the usage or options on stdout and nothing on stderr; `--version`
# prints the version; help shows defaults as a user writes them (0.9, not 0.899999976; false, not
# 0) and lists every registered gate.
# usage: cli_help.sh MOETRAIN TESTDATA_DIR
set -uo pipefail
bin=$1
source "$(dirname "$0")/common.sh"
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

for cmd in prepare train eval bench "bench step" "bench moe" inspect exits generate; do
  for flag in -h --help; do
    # shellcheck disable=SC2086  # $cmd is one or two words
    timeout 60 "$bin" $cmd $flag >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 0 ] || [ -s "$tmp/err" ] || ! grep -qiE "usage|options|configuration" "$tmp/out"; then
      fail "moetrain $cmd $flag: rc=$rc, $(wc -l <"$tmp/out") lines out; stderr: $(head -3 "$tmp/err")"
    else
      echo "ok   moetrain $cmd $flag: rc=0, $(wc -l <"$tmp/out") lines"
    fi
  done
done
for flag in -h --help; do
  timeout 60 "$bin" $flag >"$tmp/out" 2>&1 && grep -q "^usage: moetrain <command>" "$tmp/out" ||
    fail "moetrain $flag"
done
version=$(timeout 60 "$bin" --version 2>&1) && [[ "$version" =~ ^moetrain\ [0-9]+\.[0-9]+ ]] ||
  fail "moetrain --version: '$version'"
echo "ok   moetrain --version: $version"

"$bin" train --help >"$tmp/help"
grep -qE "0\.[0-9]*9999|0\.[0-9]*0000[0-9]" "$tmp/help" && fail "float noise in train --help: $(grep -E "0\.[0-9]*9999|0\.[0-9]*0000[0-9]" "$tmp/help" | head -2)"
grep -q -- "--train.beta1 arg (=0.9)" "$tmp/help" || fail "train --help: beta1 not shown as 0.9"
grep -q -- "--moe.dropless arg (=false)" "$tmp/help" || fail "train --help: a bool not shown as false"
# The moe.gate entry with its wrapped lines, up to the next key.
listed=$(awk '/--moe.gate /{on=1} on && /--moe.capacity_factor/{exit} on' "$tmp/help" | tr -s ' \n' ' ')
for gate in switch gshard hash thor evomoe dselect_k comet; do
  [[ "$listed" == *"$gate"* ]] || fail "train --help: gate $gate missing from '$listed'"
done
echo "ok   train --help: defaults without float noise, bools as true/false, gates: $listed"

if [ $failures -gt 0 ]; then
  echo "$failures case(s) failed"
  exit 1
fi
echo "all help and version cases passed"
