#!/usr/bin/env bash
# cmake --install: the binary, the tools, the launch scripts and the configs land under the
# prefix; the installed binary runs, and the installed launch/local.sh finds it with no build/ and
# no MOETRAIN set.
# usage: install.sh BUILD_DIR
set -euo pipefail
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/log" || { cat "$tmp/log"; exit 1; }
p=$tmp/prefix
for f in bin/moetrain share/moetrain/tools/plot_results.py share/moetrain/tools/torch_eval.py \
         share/moetrain/tools/export_hf.py share/moetrain/tools/hf/modeling_moetrain.py \
         share/moetrain/launch/local.sh share/moetrain/launch/multinode.sh \
         share/moetrain/configs/demo_moe.ini share/doc/moetrain/LICENSE \
         share/doc/moetrain/docs/methods.md; do
  [ -e "$p/$f" ] || { echo "FAIL: $f not installed"; cat "$tmp/log"; exit 1; }
done
"$p/bin/moetrain" --version | grep -q "^moetrain " || { echo "FAIL: the installed binary"; exit 1; }

(unset MOETRAIN; "$p/share/moetrain/launch/local.sh" -n 1 -- --version) >"$tmp/launch" 2>&1 ||
  { cat "$tmp/launch"; echo "FAIL: the installed launch/local.sh"; exit 1; }
grep -q "$p/bin/moetrain" "$tmp/launch" && grep -q "^moetrain " "$tmp/launch" ||
  { cat "$tmp/launch"; echo "FAIL: launch/local.sh did not run the installed binary"; exit 1; }
echo "ok: $(wc -l <"$tmp/log") files installed under the prefix; the binary and launch/local.sh run from it"
