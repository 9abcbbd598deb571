#!/usr/bin/env bash
# The test table of docs/tests.md (the README points there) against ctest: every test `ctest -N`
# lists has a row, and every row names a listed test (rows marked "(GPU build" may be missing
# from a build without CUDA, rows marked "(fuzz build" from one without MOETRAIN_FUZZ).
# usage: readme_tests.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
table=$(grep -E '^\| `[a-z0-9_]+` \|' "$src/docs/tests.md")
rows=$(grep -oE '^\| `[a-z0-9_]+`' <<<"$table" | tr -d '|` ' | sort)
# optional_rows MARK: the names of the rows marked "(MARK build".
optional_rows() {
  grep -E "^\| \`[a-z0-9_]+\` \| \($1 build" <<<"$table" | grep -oE '^\| `[a-z0-9_]+`' | tr -d '|` ' || true
}
absent=""
grep -q "MOETRAIN_CUDA:BOOL=OFF" "$build/CMakeCache.txt" && absent+=$(optional_rows GPU)$'\n'
grep -q "MOETRAIN_FUZZ:BOOL=ON" "$build/CMakeCache.txt" || absent+=$(optional_rows fuzz)$'\n'
listed=$(ctest --test-dir "$build" -N | sed -nE 's/^ *Test +#[0-9]+: ([^ ]+).*/\1/p' | sort)
status=0
for t in $listed; do
  grep -qx "$t" <<<"$rows" || { echo "FAIL: ctest lists $t, docs/tests.md's test table has no row for it"; status=1; }
done
for t in $rows; do
  grep -qx "$t" <<<"$listed" && continue
  grep -qx "$t" <<<"$absent" && continue
  echo "FAIL: docs/tests.md's test table names $t, which ctest -N does not list"
  status=1
done
[ $status -eq 0 ] && echo "ok: docs/tests.md's $(wc -l <<<"$rows") test rows match ctest -N"
exit $status
