#!/usr/bin/env bash
# The README's second command: installs what is missing, builds, and runs every test; then the
# same tests sanitized, and the fuzz targets, in build-sanitize/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
bash scripts/build.sh
CI=true ctest --test-dir build --output-on-failure --timeout 600 </dev/null
# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer, and the fuzz targets; all
# but slurm, cluster and soak, which run the code test_dist, resume and crash cover on more hosts,
# at 5 minutes or more each under the sanitizers, and export_hf and tensorboard, whose subject is
# Python. The preemption test signals the demo model early once there, not 3 times.
bash scripts/build_sanitize.sh
mkdir -p build-sanitize/testdata  # the corpus text extracted above, not extracted again
[ -d build-sanitize/testdata/raw ] || cp -r build/testdata/raw build-sanitize/testdata/
CI=true PREEMPT_TRIES=1 ctest --test-dir build-sanitize -E '^(slurm|cluster|soak|export_hf|tensorboard)$' --output-on-failure --timeout 900 </dev/null
