#!/usr/bin/env bash
# On the GPU machine: builds hyft and hyft_attention_check, checks the flash path
# against the oracle (exits non-zero on a failure), then times it (`hyft bench
# --attention`) beside the peers of bench/peers/attention_bench.py (same fields, one
# JSON line per path or peer and T).
#   bench/attention.sh [--seqs 4096,16384] [--cases 60] [--no-peers]
set -euo pipefail
seqs=4096,16384 cases=60 peers=1
while [ $# -gt 0 ]; do
  case "$1" in
    --seqs) seqs=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --no-peers) peers=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >/tmp/attention-configure.log 2>&1 \
  || { tail -20 /tmp/attention-configure.log; exit 1; }
cmake --build build-gpu -j16 --target hyft_attention_check hyft >/tmp/attention-build.log 2>&1 \
  || { grep -E "error" /tmp/attention-build.log | head -20; exit 1; }
build-gpu/bin/hyft_attention_check --check --cases "$cases" | grep -E "FAIL|attention check"
build-gpu/bin/hyft bench --attention --seqs "$seqs"
[ "$peers" = 1 ] && python3 bench/peers/attention_bench.py --seqs "$seqs" 2>&1 | grep '^{'
exit 0
