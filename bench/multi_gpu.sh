#!/usr/bin/env bash
# On a machine of several GPUs: hyft's data-parallel training (torchrun, one
# process a GPU, NCCL) on 1 GPU and on NPROC GPUs, beside the peer, HF + PEFT in
# DistributedDataParallel (bench/peers/hf_peft_bench.py under torchrun), in one
# command. tokens/s counts every GPU's tokens; memory is rank 0's. One JSON line
# per run (the "gpus" field says how many); logs in ${OUT:-/tmp}.
# usage: bench/multi_gpu.sh [check] [rows...]
#   check   build, make the tiny fixtures, test/distributed/data_parallel_check.py on CUDA
#           (2 GPUs x micro-batch 2 == 1 GPU x micro-batch 4 in bf16, resume across GPU
#           counts, SIGTERM to one rank, a rank that hangs)
#   rows    1.3b (micro-batch 8) and 8b (micro-batch 4), seq 2048, checkpointing on, LoRA r16 q,v
#   NPROC   GPUs of the data-parallel runs (default: every GPU); PEERS=0 leaves the peers out
# NCCL's variables (the machine's NCCL_NVLS_ENABLE=0 and the like) pass through untouched.
set -uo pipefail
out=${OUT:-/tmp}
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
# gloo's headers (HYFT_DIST_BACKEND=gloo on a machine of one GPU): from Debian's
# libgloo-dev package carried in .wheels/ when the machine has none.
gloo=()
if [ ! -f /usr/include/gloo/algorithm.h ] && ls .wheels/libgloo-dev_*.deb >/dev/null 2>&1; then
  dpkg -x .wheels/libgloo-dev_*.deb "$out/gloo" && gloo=(-DHYFT_GLOO_INCLUDE_DIR="$out/gloo/usr/include")
fi
if [ ! -x build-gpu/bin/hyft ] || [ "${REBUILD:-1}" = 1 ]; then
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" "${gloo[@]}" \
    >"$out/configure.log" 2>&1 \
    || { tail -20 "$out/configure.log"; exit 1; }
  grep "several processes" "$out/configure.log"
  cmake --build build-gpu -j16 --target hyft >"$out/build.log" 2>&1 \
    || { grep -E "error" -A3 "$out/build.log" | head -40; exit 1; }
fi
n=${NPROC:-$(nvidia-smi -L | wc -l)}
run() {  # run GPUS PROGRAM ARGS...: one process, or torchrun with one process a GPU
  local gpus=$1; shift
  if [ "$gpus" = 1 ]; then "$@"
  else python3 -m torch.distributed.run --standalone --nproc-per-node "$gpus" "$@"; fi
}
hyft() { local g=$1; shift; run "$g" --no-python build-gpu/bin/hyft bench --device cuda "$@" 2>"$out/hyft.err" | tail -1 \
  || tail -5 "$out/hyft.err"; }
peer() { local g=$1; shift; [ "${PEERS:-1}" = 1 ] || return 0
  if [ "$g" = 1 ]; then python3 bench/peers/hf_peft_bench.py "$@" 2>"$out/peer.err" | tail -1
  else python3 -m torch.distributed.run --standalone --nproc-per-node "$g" bench/peers/hf_peft_bench.py "$@" \
    2>"$out/peer.err" | tail -1; fi || tail -5 "$out/peer.err"; }
failures=0
for a in "$@"; do
  case "$a" in
    check)
      python3 test/python/make_llama_fixtures.py build-gpu/test-fixtures/llama --only mha >"$out/fixtures.log" 2>&1 \
        || { tail -5 "$out/fixtures.log"; failures=$((failures + 1)); }
      python3 test/distributed/data_parallel_check.py build-gpu/bin/hyft build-gpu/test-fixtures/llama/mha/model \
        /tmp/dp-cuda --device cuda 2>&1 | grep -E "^(ok|FAIL)|failure" || failures=$((failures + 1)) ;;
    1.3b) for g in 1 "$n"; do
            hyft "$g" --shape 1.3b --seq 2048 --micro-batch 8 --grad-checkpointing full
            peer "$g" --shape 1.3b --seq 2048 --batch 8 --grad-ckpt 1
          done ;;
    8b) for g in 1 "$n"; do
          hyft "$g" --shape 8b --seq 2048 --micro-batch 4 --grad-checkpointing full
          peer "$g" --shape 8b --seq 2048 --batch 4 --grad-ckpt 1
        done ;;
    *) echo "unknown row '$a'"; exit 2 ;;
  esac
done
[ "$failures" = 0 ]
