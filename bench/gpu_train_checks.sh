#!/usr/bin/env bash
# On the GPU machine, after a build: CUDA fine-tuning runs in bf16 and fp16 (loss
# scaler active) on a transformers-made fixture, a phase profile of `hyft bench`,
# and the data-preparation benchmark on this machine's cores.
set -uo pipefail
out=${OUT:-/tmp}
(cd build && HF_HUB_OFFLINE=1 ctest -R "make_" 2>&1 | tail -4)
fx=build/test-fixtures/llama/mha
for p in bf16 fp16; do
  echo "== finetune --precision $p"
  build/bin/hyft finetune --device cuda --precision $p --model $fx/model --train $fx/data.jsonl \
    --output /tmp/ft-$p --max-steps 40 --lr 5e-3 --micro-batch 4 --grad-checkpointing --log-every 10 \
    --eval $fx/data.jsonl --eval-every 20 --save-every 20 2>&1 | tail -9
  echo "exit $?"
done
echo "== bench profile"
build/bin/hyft bench --shape 1.3b --seq 2048 --micro-batch 8 --grad-checkpointing --device cuda --profile
build/bin/hyft bench --shape 1.3b --seq 2048 --micro-batch 8 --grad-checkpointing=false --device cuda --profile
echo "== data prep"
python3 bench/data_prep.py --mb 100 2>&1 | tail -3
