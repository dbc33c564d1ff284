#!/usr/bin/env bash
# On the GPU machine: `hyft bench` and the HF transformers + PEFT peer, eager and
# torch.compile'd, with and without gradient checkpointing, in one run. One JSON
# line each. usage: bench/lora_vs_peft.sh PEER_DIR [shape] [seq] [batch] ["1 0" checkpointing]
set -uo pipefail
peers=${1:?peer folder (hf_peft_bench.py)}; shape=${2:-1.3b}; seq=${3:-2048}; batch=${4:-8}; ckpts=${5:-1 0}
for ckpt in $ckpts; do
  build/bin/hyft bench --shape "$shape" --seq "$seq" --batch "$batch" --grad-ckpt "$ckpt" --device cuda
  python3 "$peers/hf_peft_bench.py" --shape "$shape" --seq "$seq" --batch "$batch" --grad-ckpt "$ckpt"
  python3 "$peers/hf_peft_bench.py" --shape "$shape" --seq "$seq" --batch "$batch" --grad-ckpt "$ckpt" --compile 1 \
    2> >(grep -v Warning >&2)
done
