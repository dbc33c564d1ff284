#!/usr/bin/env bash
# On the GPU machine: the quantized base (--quantize nf4|int8|int4) in one command.
# One JSON line per run; logs in ${OUT:-/tmp}.
# usage: bench/quantized.sh [check] [peft-check] [qlora-8b] [qlora-1.3b] [decode-8b] [decode-1.3b]
#   check       build, hyft_kernels_check --check (the dequantize and GEMV kernels among
#               the others) and the GEMV timings of --bench
#   peft-check  hyft eval --quantize nf4 --adapter on CUDA against PEFT over bitsandbytes'
#               Linear4bit (test/python/qlora_peft_check.py)
#   qlora-S     QLoRA training: hyft nf4 and int8 beside HF + PEFT + bitsandbytes nf4, with
#               and without Liger (bench/peers/hf_peft_bench.py --quant nf4)
#   decode-S    one decoding stream: bf16, int8, nf4, int4 (hyft bench --decode; DECODE_ARGS=--profile
#               adds the kernels of a step)
# UNFUSED=1 adds hyft with HYFT_FUSED_PROJECTIONS=0 beside each quantized row (q/k/v and
# gate/up dequantized one by one); NODEP=1 adds each decode row with every kernel
# launched the ordinary way (HYFT_DEPENDENT_LAUNCH=0, lines marked "dependent_launch":0). The bitsandbytes and liger-kernel wheels travel in .wheels/.
set -uo pipefail
out=${OUT:-/tmp}
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
if [ ! -x build-gpu/bin/hyft ] || [ "${REBUILD:-1}" = 1 ]; then
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >"$out/configure.log" 2>&1 \
    || { tail -20 "$out/configure.log"; exit 1; }
  cmake --build build-gpu -j16 --target hyft hyft_kernels_check >"$out/build.log" 2>&1 \
    || { grep -E "error" -A3 "$out/build.log" | head -40; exit 1; }
  grep -E "spill|warning" "$out/build.log" | grep -v "0 bytes spill" | head -10
fi
for w in bitsandbytes liger_kernel; do
  python3 -c "import $w" 2>/dev/null || python3 -m pip install --no-deps -q .wheels/${w}-*.whl >"$out/pip.log" 2>&1 \
    || tail -3 "$out/pip.log"
done
h1() { build-gpu/bin/hyft bench --device cuda "$@" 2>"$out/hyft.err" | tail -1 || tail -3 "$out/hyft.err"; }
h() {  # with UNFUSED=1, again with q/k/v and gate/up one by one (HYFT_FUSED_PROJECTIONS=0)
  h1 "$@"
  if [ "${UNFUSED:-0}" = 1 ]; then HYFT_FUSED_PROJECTIONS=0 h1 "$@" | sed 's/"system":"hyft/"system":"hyft-unfused/'; fi
}
peer() { python3 bench/peers/hf_peft_bench.py "$@" 2>"$out/peer.err" | tail -1 || tail -3 "$out/peer.err"; }
decode1() {
  build-gpu/bin/hyft bench --decode --device cuda --shape "$1" --streams 1 --prompt-len 128 --new-tokens 128 \
    --quantize "$2" ${DECODE_ARGS:-} 2>"$out/decode.err" | grep "^{" || tail -3 "$out/decode.err"
}
decode() {
  for q in none int8 nf4 int4; do
    decode1 "$1" $q
    if [ "${UNFUSED:-0}" = 1 ] && [ $q != none ]; then
      HYFT_FUSED_PROJECTIONS=0 decode1 "$1" $q | sed 's/"system":"hyft/"system":"hyft-unfused/'
    fi
    if [ "${NODEP:-0}" = 1 ]; then
      HYFT_DEPENDENT_LAUNCH=0 decode1 "$1" $q | sed 's/^{/{"dependent_launch":0,/'
    fi
  done
}
failures=0
for a in "$@"; do
  case "$a" in
    check)  # training_kernels.sh's check (every kernel), the GEMV timings of its --bench
      REBUILD=0 OUT="$out" bench/training_kernels.sh check | grep -E "FAIL|kernels check|^gemv"
      [ "${PIPESTATUS[0]}" = 0 ] || failures=$((failures + 1)) ;;
    peft-check)
      python3 test/python/make_llama_fixtures.py /tmp/qfx --only mha gqa_tied_linear llama3_bias_headdim >/dev/null \
        && HF_HUB_OFFLINE=1 python3 test/python/qlora_peft_check.py build-gpu/bin/hyft /tmp/qfx /tmp/qfx-out \
        || failures=$((failures + 1)) ;;
    qlora-8b)
      h --shape 8b --seq 2048 --micro-batch 4 --grad-checkpointing full --quantize nf4
      h --shape 8b --seq 2048 --micro-batch 4 --grad-checkpointing full --quantize int8
      peer --shape 8b --seq 2048 --batch 4 --grad-ckpt 1 --quant nf4 --liger 1
      peer --shape 8b --seq 2048 --batch 4 --grad-ckpt 1 --quant nf4 ;;
    qlora-1.3b)
      h --shape 1.3b --seq 2048 --micro-batch 8 --grad-checkpointing full --quantize nf4
      peer --shape 1.3b --seq 2048 --batch 8 --grad-ckpt 1 --quant nf4 --liger 1
      peer --shape 1.3b --seq 2048 --batch 8 --grad-ckpt 1 --quant nf4 ;;
    decode-8b) decode 8b ;;
    decode-1.3b) decode 1.3b ;;
    *) echo "unknown part '$a'"; exit 2 ;;
  esac
done
[ "$failures" = 0 ]
