#!/usr/bin/env bash
# On the GPU machine: hyft's fused kernels (lib/kernels) checked against their
# references, timed alone, then the training rows of BENCHMARKS.md: `hyft bench`
# with the kernels (fused) and without (HYFT_FUSED_KERNELS=0, the ATen path), beside
# HF + PEFT + Liger kernels (bench/peers/hf_peft_bench.py --liger 1; the
# liger-kernel wheel travels in .wheels/). One JSON line per run; logs in ${OUT:-/tmp}.
# usage: bench/training_kernels.sh [check] [rows...]
#   check      build, hyft_kernels_check --check and --bench
#   rows       any of: 1.3b-ckpt 1.3b-nockpt 1.3b-8k 8b-ckpt 8b-nockpt 1.3b-selective
#   peers      add the peers (Liger; eager and torch.compile with PEERS=all) beside each row
# UNFUSED=1 adds hyft with HYFT_FUSED_PROJECTIONS=0 (q/k/v and gate/up as separate GEMMs).
set -uo pipefail
out=${OUT:-/tmp}
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
if [ ! -x build-gpu/bin/hyft ] || [ ! -x build-gpu/bin/hyft_kernels_check ] || [ "${REBUILD:-1}" = 1 ]; then
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >"$out/configure.log" 2>&1 \
    || { tail -20 "$out/configure.log"; exit 1; }
  cmake --build build-gpu -j16 --target hyft hyft_kernels_check >"$out/build.log" 2>&1 \
    || { grep -E "error" -A3 "$out/build.log" | head -40; exit 1; }
fi
peers=0
for a in "$@"; do [ "$a" = peers ] && peers=1; done
if [ "$peers" = 1 ] && ! python3 -c 'import liger_kernel' 2>/dev/null; then
  python3 -m pip install --no-deps -q .wheels/liger_kernel-*.whl >"$out/pip.log" 2>&1 || tail -3 "$out/pip.log"
fi
h() { build-gpu/bin/hyft bench --device cuda "$@" 2>&1 | tail -1; }
both() {  # hyft fused, hyft ATen path (and with UNFUSED=1, projections one by one), peers
  echo "$(h "$@")"
  echo "$(HYFT_FUSED_KERNELS=0 h "$@" | sed 's/"system":"hyft"/"system":"hyft-aten"/')"
  if [ "${UNFUSED:-0}" = 1 ]; then
    echo "$(HYFT_FUSED_PROJECTIONS=0 h "$@" | sed 's/"system":"hyft"/"system":"hyft-unfused"/')"
  fi
}
peer() { python3 bench/peers/hf_peft_bench.py "$@" 2>"$out/peer.err" | tail -1 || tail -3 "$out/peer.err"; }
peers_of() {
  [ "$peers" = 1 ] || return 0
  peer "$@" --liger 1
  if [ "${PEERS:-liger}" = all ]; then peer "$@"; peer "$@" --compile 1; fi
}
failures=0
for a in "$@"; do
  case "$a" in
    check)
      build-gpu/bin/hyft_kernels_check --check >"$out/kernels_check.log" 2>&1 || failures=$((failures + 1))
      grep -E "FAIL|kernels check" "$out/kernels_check.log"
      build-gpu/bin/hyft_kernels_check --bench ;;
    1.3b-ckpt) both --shape 1.3b --seq 2048 --micro-batch 8 --grad-checkpointing full
               peers_of --shape 1.3b --seq 2048 --batch 8 --grad-ckpt 1 ;;
    1.3b-selective) h --shape 1.3b --seq 2048 --micro-batch 8 --grad-checkpointing selective ;;
    1.3b-nockpt) both --shape 1.3b --seq 2048 --micro-batch 8 --grad-checkpointing off
                 peers_of --shape 1.3b --seq 2048 --batch 8 --grad-ckpt 0 ;;
    1.3b-8k) both --shape 1.3b --seq 8192 --micro-batch 2 --grad-checkpointing full
             peers_of --shape 1.3b --seq 8192 --batch 2 --grad-ckpt 1 ;;
    8b-ckpt) both --shape 8b --seq 2048 --micro-batch 4 --grad-checkpointing full
             peers_of --shape 8b --seq 2048 --batch 4 --grad-ckpt 1 ;;
    8b-nockpt) both --shape 8b --seq 2048 --micro-batch 4 --grad-checkpointing off
               peers_of --shape 8b --seq 2048 --batch 4 --grad-ckpt 0 ;;
    peers) ;;
    *) echo "unknown row '$a'"; exit 2 ;;
  esac
done
[ "$failures" = 0 ]
