#!/usr/bin/env bash
# The GPU figures in one run, on a machine with a GPU and the CUDA build (scripts/build.sh): the
# GPU tests, the MoE layer against PyTorch's and against raw cuBLAS on its expert shapes
# (bench/moe_vs_torch.py --device cuda, fp32 and bf16; appended to results/bench/moe_gpu.md),
# and whole training steps on the GPU against the CPU.
# usage: bench/gpu.sh [CONFIG]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/demo_moe.ini}
(cd build && ctest -L gpu --output-on-failure)
for p in fp32 bf16; do
  /usr/bin/python3 bench/moe_vs_torch.py --config "$config" --device cuda --precision "$p"
done
build/moetrain bench step --config "$config" --dist.ep_size 1
for p in fp32 bf16; do
  build/moetrain bench step --config "$config" --dist.ep_size 1 --device cuda --train.precision "$p"
done
