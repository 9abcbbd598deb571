#!/usr/bin/env bash
# Configures and builds moetrain (Release) into build/. The CUDA backend is built where nvcc is
# installed (on PATH or in /usr/local/cuda); MOETRAIN_CUDA=OFF|ON overrides the choice.
# MOETRAIN_TESTS=OFF leaves the tests out (the demo: GoogleTest comes with setup.sh --test).
set -euo pipefail
cd "$(dirname "$0")/.."
cuda=OFF
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then cuda=ON; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMOETRAIN_CUDA="${MOETRAIN_CUDA:-$cuda}" \
  -DMOETRAIN_TESTS="${MOETRAIN_TESTS:-ON}"
cmake --build build -j"$(nproc)"
