#!/usr/bin/env bash
# On the GPU machine: configure against the python3 torch, build, run the CPU test
# suite (Catch2 v3 there), then `hyft eval` on CUDA against the transformers
# fixtures in fp32, bf16 and with hybrid attention. Logs go to ${OUT:-/tmp}.
set -euo pipefail
out=${OUT:-/tmp}
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >"$out/configure.log" 2>&1 \
  || { tail -30 "$out/configure.log"; exit 1; }
cmake --build build -j16 2>&1 | tee "$out/build.log" | grep -E "error|warning|FAILED" | head -40 || true
test -x build/bin/hyft_tests
(cd build && HF_HUB_OFFLINE=1 ctest --output-on-failure 2>&1 | tee "$out/ctest.log" | tail -15)
fx=build/test-fixtures/llama
for m in mha gqa_tied_linear mqa_dynamic llama3_bias_headdim mistral_window; do
  ref=$(python3 -c "import json;r=json.load(open('$fx/$m/reference.json'));print(r['loss'],r['loss_bf16'],r['hybrid']['loss'])")
  args="--json --device cuda --model $fx/$m/model --data $fx/$m/data.jsonl"
  f32=$(build/bin/hyft eval $args --precision fp32 | python3 -c "import sys,json;print(json.load(sys.stdin)['loss'])")
  b16=$(build/bin/hyft eval $args --precision bf16 | python3 -c "import sys,json;print(json.load(sys.stdin)['loss'])")
  hyb=$(build/bin/hyft eval $args --precision fp32 --window-size 4 --global-ratio 0.25 | python3 -c "import sys,json;print(json.load(sys.stdin)['loss'])")
  python3 - "$m" $ref "$f32" "$b16" "$hyb" <<'PY'
import sys
m, rf, rb, rh, f, b, h = sys.argv[1], *map(float, sys.argv[2:])
print(f"cuda {m:<20} fp32 rel {abs(f-rf)/rf:.2g}  bf16 rel {abs(b-rb)/rb:.2g}  hybrid rel {abs(h-rh)/rh:.2g}")
PY
done
echo "== doctor"
build/bin/hyft doctor
echo "== generate: greedy on CUDA (fp32) equals CPU"
build/bin/hyft model init --model-config data/risk/base_config.json --output /tmp/gen-model --force \
  --tokenizer build/test-fixtures/tokenizer/test.model
g() { build/bin/hyft generate --model /tmp/gen-model \
  --prompt "The quick brown fox" --temperature 0 --max-new-tokens 16 --precision fp32 --device "$1"; }
[ "$(g cuda)" = "$(g cpu)" ] && echo "cuda == cpu" || echo "cuda != cpu"
echo "== finetune with packing and hybrid attention on CUDA (bf16)"
build/bin/hyft finetune --device cuda --model $fx/mha/model --train $fx/mha/data.jsonl --output /tmp/ft-packed \
  --packing --max-seq-len 64 --window-size 4 --global-ratio 0.25 --max-steps 20 --micro-batch 2 --log-every 10 \
  --lr 5e-3 2>&1 | tail -4
