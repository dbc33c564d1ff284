#!/usr/bin/env bash
# On the GPU machine: `hyft bench` and the HF transformers + PEFT peer
# (bench/peers/hf_peft_bench.py), eager and torch.compile'd, with and without
# gradient checkpointing, in one run. One JSON line each.
# usage: bench/lora_vs_peft.sh [shape] [seq] [batch] ["1 0" checkpointing]
set -uo pipefail
peers=$(dirname "${BASH_SOURCE[0]}")/peers
shape=${1:-1.3b}; seq=${2:-2048}; batch=${3:-8}; ckpts=${4:-1 0}
for ckpt in $ckpts; do
  on=$([ "$ckpt" = 1 ] && echo true || echo false)
  build/bin/hyft bench --shape "$shape" --seq "$seq" --micro-batch "$batch" --grad-checkpointing="$on" --device cuda
  python3 "$peers/hf_peft_bench.py" --shape "$shape" --seq "$seq" --batch "$batch" --grad-ckpt "$ckpt"
  python3 "$peers/hf_peft_bench.py" --shape "$shape" --seq "$seq" --batch "$batch" --grad-ckpt "$ckpt" --compile 1 \
    2> >(grep -v Warning >&2)
done
