#!/usr/bin/env bash
# The accuracy cost of each --quantize format on real text: a small Llama trained
# here (every weight, `finetune --full`) on the Python standard library's sources,
# then `hyft eval` of a held-out twentieth of them with the base as bf16/fp32, int8,
# nf4 and int4. One JSON line per format with its perplexity and the change against
# the unquantized model (evaluated in float32 unless PRECISION says otherwise, so
# the change is the quantization's alone). No pretrained weights are reachable from the machines, so
# the model is trained from scratch; its size and steps are the knobs below.
# usage: bench/quant_perplexity.sh [DEVICE] [STEPS]      (defaults: cuda, 1500)
set -euo pipefail
device=${1:-cuda}; steps=${2:-1500}
hyft=${HYFT:-build-gpu/bin/hyft}
work=${WORK:-/tmp/quant-ppl}
mkdir -p "$work"
# Records of about 1,500 characters from the standard library's .py files; every
# twentieth file held out. A 4,000-piece SentencePiece tokenizer trained on them.
python3 - "$work" <<'PY'
import json, pathlib, sys, sysconfig
work = pathlib.Path(sys.argv[1])
files = sorted(pathlib.Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
corpus = open(work / "corpus.txt", "w")  # the tokenizer's training text: the first 3 MB of the training files
written = 0
with open(work / "train.jsonl", "w") as tr, open(work / "heldout.jsonl", "w") as ho:
    for i, f in enumerate(files):
        text = f.read_text(errors="replace")
        out = ho if i % 20 == 0 else tr
        if out is tr and written < 3_000_000:
            corpus.write(text)
            written += len(text)
        for s in range(0, len(text), 1500):
            chunk = text[s:s + 1500]
            if len(chunk) > 200:
                out.write(json.dumps({"text": chunk}) + "\n")
PY
cat >"$work/config.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 512, "intermediate_size": 1408,
 "num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 8, "max_position_embeddings": 1024,
 "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": false, "initializer_range": 0.02,
 "torch_dtype": "float32"}
JSON
"$hyft" tokenizer train --input "$work/corpus.txt" --vocab-size 4000 --output "$work/tok.model" --force >/dev/null
"$hyft" model init --model-config "$work/config.json" --tokenizer "$work/tok.model" --output "$work/init" --force >/dev/null
"$hyft" finetune --full --model "$work/init" --train "$work/train.jsonl" --output "$work/run" --overwrite \
  --device "$device" --max-steps "$steps" --micro-batch 16 --max-seq-len 512 --lr 1e-3 --lr-schedule cosine \
  --warmup-steps 100 --log-every 500 >"$work/finetune.log" 2>&1 || { tail -5 "$work/finetune.log"; exit 1; }
model="$work/run/model"
base=""
for q in none int8 nf4 int4; do
  loss=$("$hyft" eval --model "$model" --data "$work/heldout.jsonl" --device "$device" --quantize $q --json \
    --precision "${PRECISION:-fp32}" \
    | python3 -c "import sys,json;print(json.load(sys.stdin)['loss'])")
  [ -z "$base" ] && base=$loss
  python3 -c "import json,math,sys;l,b=float(sys.argv[2]),float(sys.argv[3]);print(json.dumps({'quantize':sys.argv[1],
'heldout_loss':round(l,7),'perplexity':round(math.exp(l),4),'perplexity_change':round(math.exp(l-b)-1,5)}))" $q "$loss" "$base"
done
