#!/usr/bin/env bash
# Configures and builds the sanitized tree build-sanitize/: clang with AddressSanitizer,
# UndefinedBehaviorSanitizer and libFuzzer's coverage, the unit tests, the binary and the fuzz
# targets (CPU only); scripts/test.sh runs its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DMOETRAIN_CUDA=OFF -DMOETRAIN_FUZZ=ON
cmake --build build-sanitize -j"$(nproc)"
