#!/usr/bin/env bash
# The demo: from a fresh clone, on CPU, in a few minutes.
#   1. set-up and build (scripts/setup.sh)
#   2. a SentencePiece tokenizer and a small Llama base model, made here
#   3. held-out accuracy / macro-F1 of the base on the bundled risk task
#   4. LoRA fine-tuning with balanced sampling (data/risk/finetune.yaml)
#   5. the same evaluation with the adapter, side by side with the base
#   6. the merged export, and one generation from it
# usage: scripts/demo.sh [--steps N] [--out DIR]     (exit 1 if fine-tuning did not help)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
steps=300 out=demo-output
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: scripts/demo.sh [--steps N] [--out DIR]" >&2; exit 2 ;;
  esac
done
[ "${HYFT_DEMO_SKIP_SETUP:-0}" = 1 ] || scripts/setup.sh
hyft=${HYFT_BIN:-build/bin/hyft}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
rm -rf "$out" && mkdir -p "$out"
labels=高风险,低风险

say "tokenizer and base model"
"$hyft" tokenizer train --input data/risk/train.jsonl --vocab-size 600 --output "$out/tokenizer.model" 2>/dev/null
"$hyft" model init --model-config data/risk/base_config.json --tokenizer "$out/tokenizer.model" --output "$out/base"
"$hyft" data stats --model "$out/base" --data data/risk/train.jsonl --sampling balanced | sed -n '1,2p;8,12p'

say "held-out evaluation of the base model"
"$hyft" eval --model "$out/base" --data data/risk/eval.jsonl --labels $labels --json > "$out/base_eval.json"

say "LoRA fine-tuning ($steps steps, balanced sampling)"
"$hyft" finetune --config data/risk/finetune.yaml --model "$out/base" --output "$out/run" --max-steps "$steps"

say "held-out evaluation with the adapter"
"$hyft" eval --model "$out/base" --adapter "$out/run/adapter" --data data/risk/eval.jsonl --labels $labels \
  --json > "$out/tuned_eval.json"

say "base vs fine-tuned (data/risk/eval.jsonl, $(wc -l < data/risk/eval.jsonl) records)"
improved=0
python3 - "$out/base_eval.json" "$out/tuned_eval.json" <<'PY' || improved=1
import json, sys
b, t = (json.load(open(p))["label_metrics"] for p in sys.argv[1:3])
print(f"{'':22}{'base':>10}{'fine-tuned':>12}")
print(f"{'accuracy':22}{b['accuracy']:>10.4f}{t['accuracy']:>12.4f}")
print(f"{'macro-F1':22}{b['macro_f1']:>10.4f}{t['macro_f1']:>12.4f}")
for label in b["labels"]:
    print(f"{'F1 ' + label:19}{b['per_class'][label]['f1']:>10.4f}{t['per_class'][label]['f1']:>12.4f}")
print("confusion (rows gold, columns predicted, order " + ", ".join(b["labels"]) + ")")
print(f"  base        {b['confusion']}\n  fine-tuned  {t['confusion']}")
sys.exit(0 if t["macro_f1"] > b["macro_f1"] else 1)
PY

say "merged export and one generation"
"$hyft" export --model "$out/base" --adapter "$out/run/adapter" --output "$out/merged"
prompt=$(head -1 data/risk/eval.jsonl | python3 -c 'import json,sys; print(json.load(sys.stdin)["prompt"])')
echo "prompt: $prompt"
printf 'output: '
"$hyft" generate --model "$out/merged" --prompt "$prompt" --temperature 0 --max-new-tokens 8 \
  --log "$out/generations.jsonl"
echo "(every prompt and output is kept in $out/generations.jsonl)"
[ $improved = 0 ] || echo "fine-tuning did not improve macro-F1" >&2
exit $improved
