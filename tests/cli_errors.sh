#!/usr/bin/env bash
# Bad input through the real binary: each case must exit non-zero, within a time limit, with one
# clear message naming the problem.
# usage: cli_errors.sh MOETRAIN TESTDATA_DIR
set -uo pipefail
bin=$1 data=$2
source "$(dirname "$0")/common.sh"
failures=0

# expect NAME PATTERN CMD...: CMD exits with code 2 in under 60 s, stderr matches PATTERN, and
# each of the $ranks processes (1, or 2 under mpirun) printed exactly one "error:" line.
ranks=1
expect() {
  local name=$1 pattern=$2
  shift 2
  timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  local lines=$(grep -c "error: " "$tmp/err") per_rank=ok
  for ((r = 0; r < ranks; r++)); do
    [ $ranks -eq 1 ] && break
    [ "$(grep -c "rank $r: error: " "$tmp/err")" -eq 1 ] || per_rank="rank $r did not print one message"
  done
  if [ $rc -ne 2 ] || ! grep -qE "$pattern" "$tmp/err" || [ "$lines" -ne $ranks ] ||
     [ "$per_rank" != ok ]; then
    echo "FAIL $name: rc=$rc (want 2), $lines error lines (want $ranks), $per_rank; stderr:"
    sed 's/^/  | /' "$tmp/err"
    failures=$((failures + 1))
  else
    echo "ok   $name: rc=$rc: $(grep -E "$pattern" "$tmp/err" | head -1)"
  fi
}

good="--data.dir $data/slice --run.results_dir $tmp/results --model.d_model 32 --model.n_layer 1
      --model.n_head 2 --model.d_ff 64 --model.seq_len 32 --train.batch_size 2 --train.steps 3"

printf '[train]\nsteps = 10\nbogus_key = 1\n' >"$tmp/unknown.ini"
expect "unknown key in file" "error: config: $tmp/unknown.ini: .*bogus_key" \
  "$bin" train --config "$tmp/unknown.ini" $good
expect "unknown flag" "error: config: .*train.nonsense" "$bin" train $good --train.nonsense 3
expect "stray word" "error: config: unexpected word 'stray'" "$bin" train $good stray
expect "key=value word" "error: config: unexpected word 'train.lr=1'" "$bin" train $good train.lr=1
"$bin" train $good --run.name ok >/dev/null || { echo "FAIL: a good run failed"; exit 1; }
expect "stray word in eval" "error: config: unexpected word 'valid'" \
  "$bin" eval --checkpoint "$tmp/results/ok/checkpoint.h5" valid
expect "bad value" "error: config: .*'abc'.*train.steps" "$bin" train $good --train.steps abc
# Boost.ProgramOptions loops forever on an error message about text holding its placeholders
# (fuzz_config found it): refused before Boost sees it, on the command line and in a file.
expect "placeholder in a flag" "error: the command line holds '%value%'" \
  "$bin" train $good --train.steps %value%
expect "placeholder in prepare's flag" "error: the command line holds '%value%'" \
  "$bin" prepare --vocab_size %value%
printf '[train]\nsteps = 5%%canonical_option%%\n' >"$tmp/placeholder.ini"
expect "placeholder in a config file" "error: config: '$tmp/placeholder.ini' holds '%canonical_option%'" \
  "$bin" train --config "$tmp/placeholder.ini" $good
expect "invalid value" "error: config: model.d_model = 30 is not divisible by model.n_head = 4" \
  "$bin" train $good --model.d_model 30 --model.n_head 4
expect "missing config file" "error: config: cannot open '$tmp/none.ini'" \
  "$bin" train --config "$tmp/none.ini"
expect "missing corpus" "error: $tmp/nowhere/train.h5: no such file" \
  "$bin" train $good --data.dir "$tmp/nowhere"

mkdir -p "$tmp/corrupt"
head -c 4096 /dev/urandom >"$tmp/corrupt/train.h5"
expect "corrupt token file" "error: $tmp/corrupt/train.h5: cannot open HDF5 file \\(not HDF5" \
  "$bin" train $good --data.dir "$tmp/corrupt"

mkdir -p "$tmp/empty"
/usr/bin/python3 - "$tmp/empty/train.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w", libver="latest") as f:
    f["tokens"] = np.zeros(0, dtype=np.int32)
    f.attrs["format"] = np.bytes_("moetrain-tokens")
    f.attrs["vocab_size"] = np.int64(1024)
PY
expect "empty token file" "error: $tmp/empty/train.h5: the token file is empty" \
  "$bin" train $good --data.dir "$tmp/empty"

mkdir -p "$tmp/raw"
: >"$tmp/raw/train.txt"
expect "empty corpus text" "error: prepare: '$tmp/raw/train.txt' is empty" \
  "$bin" prepare --input "$tmp/raw" --output "$tmp/prepared"
expect "missing corpus text" "error: prepare: cannot read '$tmp/none/train.txt'" \
  "$bin" prepare --input "$tmp/none" --output "$tmp/prepared"
# Ids made elsewhere (--tokens) and a given tokenizer.
mkdir -p "$tmp/ids"
printf '\x01\x00\x02\x00\x03' >"$tmp/ids/train.bin"
expect "ids with a byte too many" "error: prepare: '$tmp/ids/train.bin' holds 5 bytes, not a whole number of 2-byte ids" \
  "$bin" prepare --input "$tmp/ids" --output "$tmp/prepared" --tokens uint16 --vocab_size 8
printf '\x01\x00\x09\x00' >"$tmp/ids/train.bin"
expect "id outside the vocabulary" "error: prepare: '$tmp/ids/train.bin' holds id 9 at position 1, outside the vocabulary of 8" \
  "$bin" prepare --input "$tmp/ids" --output "$tmp/prepared" --tokens uint16 --vocab_size 8
expect "ids without a vocabulary" "error: prepare: --tokens needs --vocab_size" \
  "$bin" prepare --input "$tmp/ids" --output "$tmp/prepared" --tokens uint16
expect "ids of an unknown type" "error: prepare: --tokens 'int8' is not uint16 or int32" \
  "$bin" prepare --input "$tmp/ids" --output "$tmp/prepared" --tokens int8 --vocab_size 8
expect "missing tokenizer" "error: tokenizer: cannot load '$tmp/none.model'" \
  "$bin" prepare --input "$tmp/ids" --output "$tmp/prepared" --tokenizer "$tmp/none.model"
expect "tokenizer of another size" "error: prepare: --vocab_size 8 differs from the 1024 pieces of the tokenizer" \
  "$bin" prepare --input "$tmp/ids" --output "$tmp/prepared" --tokenizer "$data/slice/tokenizer.model" --vocab_size 8

expect "diverging loss" "error: training diverged: loss is (nan|inf|-nan) at step" \
  "$bin" train $good --run.name diverge --train.lr 1e30 --train.warmup 0 --train.steps 20 --train.grad_clip 0
# One owner per run folder: a fresh run refuses an earlier run's folder and leaves it as it was;
# a second run refuses a folder in use.
sum=$(sha256sum "$tmp/results/ok/results.h5" "$tmp/results/ok/checkpoint.h5")
expect "earlier run in the folder" "error: $tmp/results/ok holds an earlier run \(results.h5, checkpoint.h5\): continue it with --resume latest, or replace it with --run.overwrite true" \
  "$bin" train $good --run.name ok
[ "$sum" = "$(sha256sum "$tmp/results/ok/results.h5" "$tmp/results/ok/checkpoint.h5")" ] ||
  { echo "FAIL: the refused run changed the earlier run's files"; failures=$((failures + 1)); }
"$bin" train $good --run.name busy --train.steps 100000 >"$tmp/busy.log" 2>&1 &
busy=$!
for _ in $(seq 100); do grep -q "^step" "$tmp/busy.log" && break; sleep 0.1; done
expect "run folder in use" "error: $tmp/results/busy: in use by pid $busy on host $(hostname)" \
  "$bin" train $good --run.name busy --run.overwrite true
expect "run folder in use, resuming" "error: $tmp/results/busy: in use by pid $busy" \
  "$bin" train $good --run.name busy --resume "$tmp/results/ok/checkpoint.h5"
kill $busy && wait $busy 2>/dev/null
expect "missing checkpoint" "error: $tmp/none.h5: no such file" \
  "$bin" eval --checkpoint "$tmp/none.h5"
# HDF5's older format has no checksums on its metadata, and HDF5 1.10 crashes on some damaged
# files of it (this one, found by fuzz_checkpoint, segfaulted inside H5Aexists): refused unread.
v0="$(dirname "$0")/../fuzz/regressions/checkpoint/hdf5_v0_segv.h5"
expect "damaged file of HDF5's unchecked format" "error: $v0: HDF5 file without metadata checksums \(superblock version 0" \
  "$bin" eval --checkpoint "$v0"
# A token file whose metadata fails its checksum (found by fuzz_tokens): read as a live SWMR file
# HDF5 retried it for over 10 minutes; a file that nobody writes is read once.
mkdir -p "$tmp/damaged" && cp "$(dirname "$0")/../fuzz/regressions/tokens/swmr_retries.h5" "$tmp/damaged/train.h5"
expect "token file with damaged metadata" "error: $tmp/damaged/train.h5: cannot open / \(missing, or the file is damaged\)" \
  "$bin" train $good --data.dir "$tmp/damaged"
mkdir -p "$tmp/v0" && cp "$v0" "$tmp/v0/train.h5"
expect "token file of HDF5's unchecked format" "error: $tmp/v0/train.h5: HDF5 file without metadata checksums .*moetrain prepare" \
  "$bin" train $good --data.dir "$tmp/v0"
expect "unknown command" "error: unknown command 'trian'" "$bin" trian
expect "unknown device" "error: --device 'gpu' \(cpu or cuda\)" "$bin" train $good --device gpu
expect "unknown GEMM library" "error: config: train.cpu_gemm = 'mkl' \\(auto, onednn or openblas\\)" \
  "$bin" train $good --train.cpu_gemm mkl

# bf16 on a CPU without AVX512_BF16 (oneDNN made to see at most AVX512_CORE), in each command; the
# message names the ISA oneDNN finds (AVX2 on a CPU without AVX-512).
isa=AVX512_CORE
grep -qw avx512f /proc/cpuinfo || isa=AVX2
nobf16="error: train.precision = bf16 on the CPU needs AVX512_BF16, and oneDNN finds $isa"
expect "bf16 on a CPU without AVX512_BF16" "$nobf16" \
  env DNNL_MAX_CPU_ISA=AVX512_CORE "$bin" train $good --train.precision bf16
expect "bf16 without AVX512_BF16 in bench step" "$nobf16" \
  env DNNL_MAX_CPU_ISA=AVX512_CORE "$bin" bench step $good --train.precision bf16
expect "bf16 without AVX512_BF16 in bench moe" "$nobf16" \
  env DNNL_MAX_CPU_ISA=AVX512_CORE "$bin" bench moe $good --moe.experts 2 --train.precision bf16
if ! nvidia-smi -L >/dev/null 2>&1; then  # no GPU: --device cuda stops with why
  expect "cuda without a GPU" "error: --device cuda: (this moetrain was built without|rank 0 sees no GPU)" \
    "$bin" train $good --device cuda
fi

# Distributed runs: every rank reports, mpirun exits non-zero, nothing hangs.
mpi+=(-np 2)
ranks=2
moe="--moe.experts 4 --moe.every 1"
expect "ep_size not dividing the world" "rank 1: error: dist.ep_size = 3 does not divide the world size 2" \
  "${mpi[@]}" "$bin" train $good $moe --dist.ep_size 3
expect "experts not divisible by ep_size" "rank 0: error: moe.experts = 3 is not divisible by the expert-parallel size 2" \
  "${mpi[@]}" "$bin" train $good --moe.experts 3 --moe.every 1
expect "DSelect-k's width out of range" "rank 1: error: config: dselect.gamma = 0 \\(must be > 0\\)" \
  "${mpi[@]}" "$bin" train $good $moe --moe.gate dselect_k --dselect.gamma 0
expect "a gate's word key out of its list" "rank 0: error: config: thor.granularity = 'layer' \\(batch, sequence or token\\)" \
  "${mpi[@]}" "$bin" train $good $moe --moe.gate thor --thor.granularity layer
expect "Gating Dropout with the permutation search" "rank 1: error: config: gd.p > 0 and perm.steps > 0" \
  "${mpi[@]}" "$bin" train $good $moe --gd.p 0.2 --perm.steps 5
expect "bf16 without AVX512_BF16 on 2 ranks" "rank 1: $nobf16" \
  "${mpi[@]}" -x DNNL_MAX_CPU_ISA=AVX512_CORE "$bin" train $good --train.precision bf16
expect "too few experts for the gate" "rank 0: error: config: moe.gate = gshard needs at least 2 experts" \
  "${mpi[@]}" "$bin" train $good --moe.experts 1 --moe.every 1 --moe.gate gshard
expect "batch not divisible by ranks" "error: train.batch_size = 3 is not divisible by the 2 ranks" \
  "${mpi[@]}" "$bin" train $good $moe --train.batch_size 3
expect "micro-batch not dividing the local batch" "rank 1: error: train.micro_batch_size = 3 does not divide the 4 sequences per rank" \
  "${mpi[@]}" "$bin" train $good $moe --train.batch_size 8 --train.micro_batch_size 3
mkdir -p "$tmp/results/ckfile" "$tmp/results/ckdir/checkpoint.h5"
touch "$tmp/results/ckfile/checkpoints"  # the periodic checkpoints' folder cannot be made
expect "failed periodic checkpoint write on rank 0" "rank 1: error: checkpoint .*ckfile/checkpoints/step_00000002.h5: writing failed on rank 0" \
  "${mpi[@]}" "$bin" train $good $moe --run.name ckfile --train.checkpoint_every 2
[ ! -e "$tmp/results/ckfile/checkpoints/step_00000002.h5.tmp" ] || { echo "FAIL: a .tmp stayed"; failures=$((failures + 1)); }
expect "failed final checkpoint write on rank 0" "rank 0: error: checkpoint .*ckdir/checkpoint.h5: .*Is a directory" \
  "${mpi[@]}" "$bin" train $good $moe --run.name ckdir
[ ! -e "$tmp/results/ckdir/checkpoint.h5.tmp" ] || { echo "FAIL: checkpoint.h5.tmp stayed"; failures=$((failures + 1)); }
expect "earlier run in the folder, 2 ranks" "rank 1: error: $tmp/results/ok holds an earlier run" \
  "${mpi[@]}" "$bin" train $good $moe --run.name ok
expect "hierarchical on a bad layout" "error: dist.ranks_per_node = 3 does not divide the world size 2" \
  "${mpi[@]}" "$bin" train $good $moe --dist.a2a hierarchical --dist.ranks_per_node 3
# moetrain exits (JEI-DNN) on the 1-block dense checkpoint: no block before the last, bad flags.
ok_ckpt=$tmp/results/ok/checkpoint.h5
expect "exits without a block before the last" "rank 1: error: exits: --blocks moe: no block of this 1-block model \\(MoE blocks before the last\\) takes an exit" \
  "${mpi[@]}" "$bin" exits --checkpoint "$ok_ckpt"
expect "exits after the last block" "rank 0: error: exits: block 0 \\(ascending block indices below the last, 0\\)" \
  "${mpi[@]}" "$bin" exits --checkpoint "$ok_ckpt" --blocks 0
expect "exits: a bad IM loss" "rank 1: error: exits: --im_loss 'paper' \\(code or intent\\)" \
  "${mpi[@]}" "$bin" exits --checkpoint "$ok_ckpt" --im_loss paper
expect "exits: a bad kv mode" "rank 1: error: exits: --kv 'frozen' \\(propagate or full\\)" \
  "${mpi[@]}" "$bin" exits --checkpoint "$ok_ckpt" --kv frozen
timeout 60 "$bin" train $good --model.n_layer 2 --run.name two >/dev/null 2>&1
mkdir -p "$tmp/results/exdir/e.h5"
expect "exits: a results file that cannot be written" "rank 1: error: $tmp/results/exdir/e.h5: cannot rename .*Is a directory" \
  "${mpi[@]}" "$bin" exits --checkpoint "$tmp/results/two/checkpoint.h5" --blocks 0 --steps 2 \
  --warmup 1 --output "$tmp/results/exdir/e.h5"
two=$tmp/results/two/checkpoint.h5
timeout 60 "$bin" exits --checkpoint "$two" --blocks 0 --steps 2 --warmup 1 --batches 1 \
  --eval_batches 1 --save "$tmp/ex.h5" --output "$tmp/ex_results.h5" >/dev/null 2>&1
timeout 60 "$bin" train $good --model.n_layer 2 --train.steps 4 --run.name two4 >/dev/null 2>&1
expect "exits: resuming past --steps" "rank 1: error: exits: $tmp/ex.h5 was written after step 2, and --steps is 1" \
  "${mpi[@]}" "$bin" exits --checkpoint "$two" --blocks 0 --steps 1 --warmup 1 --resume "$tmp/ex.h5"
expect "exits: resuming on another backbone" "rank 0: error: exits: $tmp/ex.h5 trained exits on a backbone after step 3; --checkpoint's is after step 4" \
  "${mpi[@]}" "$bin" exits --checkpoint "$tmp/results/two4/checkpoint.h5" --blocks 0 --steps 2 \
  --warmup 1 --resume "$tmp/ex.h5"
expect "exits: resuming from a missing file" "rank 1: error: $tmp/none.h5: no such file" \
  "${mpi[@]}" "$bin" exits --checkpoint "$two" --blocks 0 --steps 2 --warmup 1 --resume "$tmp/none.h5"
expect "exits: a gate learning rate of 0" "rank 1: error: exits: --lambda 0.1 --lr 0.001 --gate_lr 0 \\(lambda >= 0, learning rates > 0\\)" \
  "${mpi[@]}" "$bin" exits --checkpoint "$ok_ckpt" --gate_lr 0
expect "exits: a threshold above 1" "rank 0: error: exits: --thresholds '0.5,1.5'" \
  "${mpi[@]}" "$bin" exits --checkpoint "$ok_ckpt" --thresholds 0.5,1.5
# moetrain generate: missing or bad flags, a checkpoint without a tokenizer and no data.dir.
expect "generate without a prompt" "rank 1: error: generate: --prompt TEXT is required" \
  "${mpi[@]}" "$bin" generate --checkpoint "$ok_ckpt"
expect "generate: no new tokens" "rank 0: error: generate: --tokens 0 --temperature 0 --top_k 0 \\(tokens > 0" \
  "${mpi[@]}" "$bin" generate --checkpoint "$ok_ckpt" --prompt "In the beginning" --tokens 0
cp "$ok_ckpt" "$tmp/notok.h5"
/usr/bin/python3 -c "import h5py, sys; del h5py.File(sys.argv[1], 'r+')['tokenizer']" "$tmp/notok.h5"
expect "generate: no tokenizer anywhere" "rank 1: error: generate: $tmp/notok.h5 holds no tokenizer and $tmp/none/tokenizer.model is missing \\(--data.dir DIR\\)" \
  "${mpi[@]}" "$bin" generate --checkpoint "$tmp/notok.h5" --prompt "In the beginning" --data.dir "$tmp/none"

if [ $failures -gt 0 ]; then
  echo "$failures case(s) failed"
  exit 1
fi
echo "all bad-input cases gave one clear message per rank and exit code 2"
