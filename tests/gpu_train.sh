#!/usr/bin/env bash
# The trainer on the GPU against the CPU (exit 77, skipped, where no GPU is visible), on a tiny
# MoE (4 experts, Switch gate, capacity drops) with one rank per GPU, up to 2:
# - fp32: the loss curve of 40 steps follows the CPU's within 5e-3 relative at every step
#   (kernels sum in other orders and use CUDA's expf/tanhf, and a near-tie may route a token
#   differently); bf16 matmuls within 3e-2;
# - a checkpoint written on the GPU evaluates on the CPU to the GPU's loss (1e-4 relative), and
#   a GPU run stopped at step 20 and resumed on the CPU follows the GPU run within 5e-3.
# usage: gpu_train.sh MOETRAIN TESTDATA_DIR
set -uo pipefail
bin=$1 data=$2
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
[ "${gpus:-0}" -gt 0 ] || { echo "no GPU visible: skipped"; exit 77; }
source "$(dirname "$0")/common.sh"
np=$(( gpus >= 2 ? 2 : 1 ))
args=(--data.dir "$data/slice" --run.results_dir "$tmp" --model.seq_len 32 --model.d_model 64
      --model.n_layer 2 --model.n_head 2 --model.d_ff 128 --moe.experts 4 --moe.every 1
      --train.batch_size 8 --train.steps 40 --train.warmup 5 --train.eval_every 20
      --train.eval_batches 2 --train.log_every 10)
run() { timeout 300 "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }; }
run "${mpi[@]}" -np $np "$bin" train "${args[@]}" --run.name cpu
run "${mpi[@]}" -np $np "$bin" train "${args[@]}" --run.name gpu --device cuda
run "${mpi[@]}" -np $np "$bin" train "${args[@]}" --run.name bf16 --device cuda --train.precision bf16
run "${mpi[@]}" -np $np "$bin" train "${args[@]}" --run.name cross --device cuda --train.run_steps 20
run "${mpi[@]}" -np $np "$bin" train "${args[@]}" --run.name cross --resume latest
for dev in cpu cuda; do
  run "${mpi[@]}" -np $np "$bin" eval --checkpoint "$tmp/gpu/checkpoint.h5" --batches 4 --device $dev
  grep -oE 'loss [0-9.]+' "$tmp/log" | head -1 | cut -d' ' -f2 >"$tmp/eval_$dev"
done
/usr/bin/python3 - "$tmp" <<'PY' || exit 1
import sys, h5py, numpy as np
tmp = sys.argv[1]
curve = lambda run: h5py.File(f"{tmp}/{run}/results.h5")["train/loss"][()]
def close(a, b, rtol, what):
    worst = np.max(np.abs(a - b) / np.abs(b))
    print(f"{'ok' if worst <= rtol else 'FAIL'}: {what}: worst relative difference {worst:.2e} (tolerance {rtol:g})")
    return worst <= rtol
cpu, gpu, bf16, cross = curve("cpu"), curve("gpu"), curve("bf16"), curve("cross")
ev = [float(open(f"{tmp}/eval_{d}").read()) for d in ("cpu", "cuda")]
ok = close(gpu, cpu, 5e-3, "GPU fp32 loss curve vs CPU, 40 steps")
ok &= close(bf16, cpu, 3e-2, "GPU bf16 loss curve vs CPU, 40 steps")
ok &= close(cross, gpu, 5e-3, "GPU to step 20, then CPU, vs GPU throughout")
ok &= close(np.array([ev[0]]), np.array([ev[1]]), 1e-4, f"GPU checkpoint evaluated on CPU {ev[0]:.6f} and GPU {ev[1]:.6f}")
sys.exit(0 if ok else 1)
PY
