#!/usr/bin/env bash
# On the GPU machine: decoding through hyft's serving engine (`hyft bench --decode`,
# the path of `hyft serve` and `generate`) beside transformers' generate
# (bench/decode_peer.py), one stream and 32, and transformers without its KV cache,
# in one command. One JSON line per run; logs in ${OUT:-/tmp}.
# usage: bench/serve_decode.sh [SHAPE]   (default 1.3b)
set -uo pipefail
out=${OUT:-/tmp}
shape=${1:-1.3b}
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
if [ ! -x build-gpu/bin/hyft ] || [ "${REBUILD:-1}" = 1 ]; then
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >"$out/configure.log" 2>&1 \
    || { tail -20 "$out/configure.log"; exit 1; }
  cmake --build build-gpu -j16 --target hyft >"$out/build.log" 2>&1 \
    || { grep -E "error" -A3 "$out/build.log" | head -40; exit 1; }
fi
build-gpu/bin/hyft bench --decode --check --device cuda --shape "$shape" --streams 1,32 --prompt-len 128 --new-tokens 256 \
  || echo "FAIL: hyft bench --decode --check"
HYFT_DECODE_GRAPHS=0 build-gpu/bin/hyft bench --decode --device cuda --shape "$shape" --streams 1,32 --prompt-len 128 \
  --new-tokens 256 | sed 's/"system":"hyft"/"system":"hyft-eager"/'
python3 bench/decode_peer.py --shape "$shape" --streams 1,32 --prompt-len 128 --new-tokens 256 2>"$out/peer.err" \
  || tail -5 "$out/peer.err"
python3 bench/decode_peer.py --shape "$shape" --streams 1 --prompt-len 128 --new-tokens 256 --no-cache \
  2>>"$out/peer.err" || tail -5 "$out/peer.err"
