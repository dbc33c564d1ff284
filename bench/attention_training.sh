#!/usr/bin/env bash
# On the GPU machine: training throughput of the attention paths (1.3b shape, LoRA
# r16 q,v, bf16, gradient checkpointing), one JSON line each from `hyft bench`:
#   seq 8192 x 2: causal, window 512, window 512 + global ratio 0.1;
#   seq 2048 x 8: full rows against --packing of records of 100-1500 tokens;
#   seq 16384 x 1 and 65536 x 1 with the hybrid rule (the long-context cases).
# Builds build-gpu/bin/hyft first. Peers: bench/peers/hf_peft_bench.py (see BENCHMARKS.md).
set -uo pipefail
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >/tmp/at-configure.log 2>&1 \
  || { tail -20 /tmp/at-configure.log; exit 1; }
cmake --build build-gpu -j16 --target hyft >/tmp/at-build.log 2>&1 || { grep -E "error" /tmp/at-build.log | head; exit 1; }
b() { build-gpu/bin/hyft bench --device cuda --shape 1.3b --grad-checkpointing --steps 6 --warmup 2 "$@" 2>&1 | tail -1; }
b --seq 8192 --micro-batch 2
b --seq 8192 --micro-batch 2 --window-size 512
b --seq 8192 --micro-batch 2 --window-size 512 --global-ratio 0.1
b --seq 2048 --micro-batch 8
b --seq 2048 --micro-batch 8 --packing --min-len 100 --max-len 1500
b --seq 16384 --micro-batch 1 --window-size 512 --global-ratio 0.1
b --seq 65536 --micro-batch 1 --window-size 512 --global-ratio 0.1 --steps 2 --warmup 1
