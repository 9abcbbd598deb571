#!/usr/bin/env bash
# The README's second command: installs what is missing, builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
CI=true ctest --test-dir build --output-on-failure --timeout 600 </dev/null
