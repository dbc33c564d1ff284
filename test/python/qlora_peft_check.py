#!/usr/bin/env python3
"""QLoRA on CUDA against PEFT + bitsandbytes' own 4-bit layers (GPU machine only).

  qlora_peft_check.py HYFT FIXTURES_DIR OUT_DIR

For each fixture (test/python/make_llama_fixtures.py layouts under FIXTURES_DIR):
a PEFT adapter with random A and B (hf_reference.peft_make, rank 8 on every
projection) is applied over a base whose layer projections are bitsandbytes'
Linear4bit (NF4, blocks of 64, float32 compute: bnb's CUDA quantize and
dequantize kernels; without and with double quantization, compress_statistics),
and transformers' loss is compared with `hyft eval --quantize nf4|nf4-dq --adapter`
on CUDA in float32 (relative bound 1e-5).
Exits 1 on any failure.
"""
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from hf_reference import load_base, nll_sum, peft_make, read_jsonl  # noqa: E402

FIXTURES = ["mha", "gqa_tied_linear", "llama3_bias_headdim"]
TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


def to_bnb_nf4(model, double_quant):
    import bitsandbytes as bnb
    for mod in list(model.modules()):
        for name, child in list(mod.named_children()):
            if isinstance(child, torch.nn.Linear) and name in TARGETS.split(","):
                q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                      compute_dtype=torch.float32, quant_type="nf4", compress_statistics=double_quant,
                                      quant_storage=torch.uint8)
                q.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, quant_type="nf4",
                                             compress_statistics=double_quant, blocksize=64)
                if child.bias is not None:
                    q.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
                setattr(mod, name, q.to("cuda"))


def peft_nf4_loss(model_dir, adapter, data, double_quant):
    from peft import PeftModel
    base = load_base(model_dir).to("cuda")
    to_bnb_nf4(base, double_quant)
    model = PeftModel.from_pretrained(base, adapter).eval()
    total, count = 0.0, 0
    for rec in data:
        ids = torch.tensor([rec["input_ids"]], device="cuda")
        labels = torch.tensor(rec.get("labels", rec["input_ids"]), device="cuda")
        with torch.no_grad():
            logits = model(ids).logits[0].float()
        s, c = nll_sum(logits.cpu(), labels.cpu())
        total += s
        count += c
    return total / count, count


def main():
    hyft, fixtures, out = sys.argv[1:4]
    failures = 0
    for name in FIXTURES:
        model_dir, data = f"{fixtures}/{name}/model", f"{fixtures}/{name}/data.jsonl"
        adapter = f"{out}/{name}-adapter"
        peft_make(model_dir, data, adapter, TARGETS, 8, 16, False, seed=3)
        for fmt in ("nf4", "nf4-dq"):
            ref, tokens = peft_nf4_loss(model_dir, adapter, read_jsonl(data), fmt == "nf4-dq")
            run = subprocess.run([hyft, "eval", "--model", model_dir, "--adapter", adapter, "--data", data,
                                  "--quantize", fmt, "--device", "cuda", "--precision", "fp32", "--json"],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                print(f"FAIL {name} {fmt}: hyft eval exited {run.returncode}: {run.stderr.strip()[-300:]}")
                failures += 1
                continue
            ours = json.loads(run.stdout)["loss"]
            rel = abs(ours - ref) / abs(ref)
            ok = rel < 1e-5
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} qlora {name:<20} {fmt:<6} hyft + adapter {ours:.7f}, PEFT + bnb "
                  f"Linear4bit {ref:.7f} (rel {rel:.2g}, bound 1e-5, {tokens} tokens)")
    print(f"qlora check: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
