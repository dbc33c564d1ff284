#!/usr/bin/env python3
"""Reference numbers from transformers and PEFT for hyft's tests.

  hf_reference.py hf-eval MODEL DATA [--dtype bf16]     loss of a HF model folder
  hf_reference.py peft-eval MODEL ADAPTER DATA          loss of base + PEFT adapter
  hf_reference.py peft-make MODEL DATA OUT --targets q_proj,v_proj --r 8 --alpha 16
                  [--rslora] [--seed S]                 a PEFT adapter with random A and B
  hf_reference.py peft-fixtures LLAMA_FIXTURES OUT      the adapters the C++ tests use
  hf_reference.py hf-generate MODEL IDS N PENALTY [W R] greedy generate(do_sample=False)
  hf_reference.py hf-generate-text MODEL PROMPT N        AutoTokenizer + greedy generate, decoded
  hf_reference.py hf-process CASES.json                  transformers' logits processors
  hf_reference.py label-scores MODEL TOKENIZER DATA A,B  enumerated-label predictions and metrics
  hf_reference.py hf-tokenize MODEL DATA                AutoTokenizer's ids for text, prompt/completion and
                                                        messages records (apply_chat_template)

Each prints one JSON object. Losses are token-weighted means over the JSONL
(pre-tokenized records), position t predicting labels[t+1], -100 ignored.
"""
import argparse
import json
import sys

import torch


def nll_sum(logits, labels):
    """Summed NLL of the targets: logits[t] predicts labels[t+1]; -100 ignored."""
    lg = logits[:-1].float()
    y = labels[1:]
    keep = y != -100
    if keep.sum() == 0:
        return 0.0, 0
    return torch.nn.functional.cross_entropy(lg[keep], y[keep], reduction="sum").item(), int(keep.sum())


def fresh_rope(model):
    """Forget the longest length a dynamic RoPE has seen: each sequence is then
    scaled by its own length, as a freshly loaded model would scale it."""
    inner = model
    while not hasattr(inner, "rotary_emb") and hasattr(inner, "model"):
        inner = inner.model
    rope = getattr(inner, "rotary_emb", None)
    if rope is not None and "dynamic" in str(rope.rope_type):
        rope.inv_freq = rope.original_inv_freq.clone()
        rope.max_seq_len_cached = rope.original_max_seq_len


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def dataset_loss(model, data, mask_fn=None):
    total, count = 0.0, 0
    for rec in data:
        fresh_rope(model)
        ids = torch.tensor([rec["input_ids"]])
        labels = torch.tensor(rec.get("labels", rec["input_ids"]))
        kwargs = {}
        if mask_fn is not None:
            kwargs["attention_mask"] = mask_fn(ids.shape[1])
        with torch.no_grad():
            logits = model(ids, **kwargs).logits[0]
        s, c = nll_sum(logits, labels)
        total += s
        count += c
    return total / count, count


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def load_base(path, dtype="fp32"):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[dtype], attn_implementation="eager").eval()


def main():
    import transformers
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("hf-eval")
    p.add_argument("model")
    p.add_argument("data")
    p.add_argument("--dtype", default="fp32", choices=DTYPES)
    p = sub.add_parser("peft-eval")
    p.add_argument("model")
    p.add_argument("adapter")
    p.add_argument("data")
    p = sub.add_parser("peft-make")
    p.add_argument("model")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--targets", default="q_proj,v_proj")
    p.add_argument("--r", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--rslora", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("hf-resize")
    p.add_argument("model")
    p.add_argument("vocab", type=int)
    p.add_argument("out")
    p = sub.add_parser("hf-generate")
    p.add_argument("model")
    p.add_argument("ids")
    p.add_argument("max_new", type=int)
    p.add_argument("penalty", type=float)
    p = sub.add_parser("hf-generate-text")
    p.add_argument("model")
    p.add_argument("prompt")
    p.add_argument("max_new", type=int)
    p = sub.add_parser("hf-process")
    p.add_argument("spec")
    p = sub.add_parser("label-scores")
    p.add_argument("model")
    p.add_argument("tokenizer")
    p.add_argument("data")
    p.add_argument("labels")
    p = sub.add_parser("hf-tokenize")
    p.add_argument("model")
    p.add_argument("data")
    p = sub.add_parser("peft-fixtures")
    p.add_argument("llama")
    p.add_argument("out")
    a = ap.parse_args()

    if a.cmd == "hf-eval":
        loss, tokens = dataset_loss(load_base(a.model, a.dtype), read_jsonl(a.data))
        print(json.dumps({"loss": loss, "tokens": tokens}))
    elif a.cmd == "peft-eval":
        from peft import PeftModel
        model = load_base(a.model)
        resize_for_adapter(model, a.adapter)
        model = PeftModel.from_pretrained(model, a.adapter).eval()
        loss, tokens = dataset_loss(model, read_jsonl(a.data))
        print(json.dumps({"loss": loss, "tokens": tokens}))
    elif a.cmd == "peft-make":
        print(json.dumps(peft_make(a.model, a.data, a.out, a.targets, a.r, a.alpha, a.rslora, a.seed)))
    elif a.cmd == "hf-resize":
        # transformers' own resize (mean_resizing, the default): the grown rows to compare.
        from safetensors.torch import save_file
        model = load_base(a.model)
        model.resize_token_embeddings(a.vocab)
        out = {"embed_tokens": model.get_input_embeddings().weight.detach().contiguous()}
        if not model.config.tie_word_embeddings:
            out["lm_head"] = model.get_output_embeddings().weight.detach().contiguous()
        save_file(out, a.out)
        print(json.dumps({"vocab": model.config.vocab_size}))
    elif a.cmd == "hf-generate":
        model = load_base(a.model)
        ids = torch.tensor([[int(x) for x in a.ids.split(",")]])
        with torch.no_grad():
            out = model.generate(ids, do_sample=False, max_new_tokens=a.max_new, repetition_penalty=a.penalty,
                                 eos_token_id=model.config.eos_token_id, pad_token_id=0)
        print(json.dumps({"tokens": out[0, ids.shape[1]:].tolist()}))
    elif a.cmd == "hf-generate-text":
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(a.model)
        model = load_base(a.model)
        ids = tok(a.prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(ids, do_sample=False, max_new_tokens=a.max_new, pad_token_id=0)
        new = out[0, ids.shape[1]:].tolist()
        if new and new[-1] == tok.eos_token_id:
            new = new[:-1]
        print(json.dumps({"text": tok.decode(new, skip_special_tokens=True), "ids": new}))
    elif a.cmd == "hf-process":
        from transformers import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
                                  TopPLogitsWarper)
        spec = json.load(open(a.spec))
        out = []
        for case in spec["cases"]:
            scores = torch.tensor([case["logits"]], dtype=torch.float32)
            ids = torch.tensor([case["history"]])
            if case["penalty"] != 1.0:
                scores = RepetitionPenaltyLogitsProcessor(case["penalty"])(ids, scores)
            if case["temperature"] != 1.0:
                scores = TemperatureLogitsWarper(case["temperature"])(ids, scores)
            if case["top_k"] > 0:
                scores = TopKLogitsWarper(case["top_k"])(ids, scores)
            if case["top_p"] < 1.0:
                scores = TopPLogitsWarper(case["top_p"])(ids, scores)
            out.append([None if v == float("-inf") else v for v in scores[0].tolist()])
        print(json.dumps({"processed": out}))
    elif a.cmd == "label-scores":
        print(json.dumps(label_scores(load_base(a.model), a.tokenizer, read_jsonl(a.data), a.labels.split(","))))
    elif a.cmd == "hf-tokenize":
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(a.model)
        out = []
        for rec in read_jsonl(a.data):
            if "messages" in rec:
                ids = tok.apply_chat_template(rec["messages"], tokenize=True)
                if isinstance(ids, dict) or hasattr(ids, "input_ids"):
                    ids = ids["input_ids"]
            elif "text" in rec:
                ids = tok(rec["text"]).input_ids + [tok.eos_token_id]
            else:
                ids = tok(rec["prompt"] + rec["completion"]).input_ids + [tok.eos_token_id]
            out.append(list(ids))
        print(json.dumps({"ids": out, "class": type(tok).__name__}))
    elif a.cmd == "peft-fixtures":
        for name, base, targets, r, alpha, rslora, *more in PEFT_FIXTURES:
            to_save, grow = more if more else (None, 0)
            out = peft_make(f"{a.llama}/{base}/model", f"{a.llama}/{base}/data.jsonl", f"{a.out}/{name}",
                            targets, r, alpha, rslora, seed=len(name), modules_to_save=to_save, grow=grow)
            print(f"{name}: loss {out['loss']:.6f}, trainable {out['trainable']} of {out['total']}")


def label_scores(model, tokenizer_path, data, labels):
    """For prompt/completion records: each label's summed NLL as the continuation
    of BOS + prompt, the prompt and label encoded as one string by sentencepiece
    (as transformers' tokenizer(prompt + label)), the tokens ending inside the label
    plus EOS as targets; the prediction is the least; then accuracy, per-class F1,
    macro-F1 and the confusion matrix (rows gold, columns predicted)."""
    import os
    import sentencepiece as spm
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
    from tokenize_with_hf import sp_spans
    sp = spm.SentencePieceProcessor(model_file=tokenizer_path)
    scores, gold, pred = [], [], []
    for rec in data:
        row = []
        for label in labels:
            pieces = sp_spans(sp, rec["prompt"] + label)
            ids = [sp.bos_id()] + [pid for pid, _, _ in pieces] + [sp.eos_id()]
            targets = [i + 1 for i, (_, _, end) in enumerate(pieces) if end > len(rec["prompt"])] + [len(ids) - 1]
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0].float()
            logp = torch.log_softmax(logits, dim=-1)
            row.append(-sum(logp[t - 1, ids[t]].item() for t in targets))
        scores.append(row)
        pred.append(min(range(len(labels)), key=lambda i: row[i]))
        gold.append(labels.index(rec.get("label", rec["completion"]).strip()))
    k = len(labels)
    confusion = [[0] * k for _ in range(k)]
    for g, p in zip(gold, pred):
        confusion[g][p] += 1
    f1 = []
    for c in range(k):
        tp = confusion[c][c]
        predicted = sum(confusion[o][c] for o in range(k))
        actual = sum(confusion[c])
        prec = tp / predicted if predicted else 0.0
        rec_ = tp / actual if actual else 0.0
        f1.append(2 * prec * rec_ / (prec + rec_) if prec + rec_ else 0.0)
    return {"scores": scores, "predictions": [labels[i] for i in pred],
            "accuracy": sum(g == p for g, p in zip(gold, pred)) / len(gold), "macro_f1": sum(f1) / k,
            "confusion": confusion}


# name, base fixture, targets, r, alpha, rslora
PEFT_FIXTURES = [
    ("mha_all", "mha", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", 8, 16, False),
    ("tied_qv_rslora", "gqa_tied_linear", "q_proj,v_proj", 4, 8, True),
    ("bias_kod", "llama3_bias_headdim", "k_proj,o_proj,down_proj", 6, 12, False),
    ("qv_lm_head", "mha", "q_proj,v_proj,lm_head", 4, 8, False),
    # modules_to_save (embed_tokens and lm_head trained whole), and the same after the
    # vocabulary grew by 5 tokens (resize_token_embeddings before get_peft_model)
    ("qv_saved", "mha", "q_proj,v_proj", 4, 8, False, ["embed_tokens", "lm_head"], 0),
    ("qv_saved_grown", "mha", "q_proj,v_proj", 4, 8, False, ["embed_tokens", "lm_head"], 5),
]


def resize_for_adapter(model, adapter_dir):
    """Grows the base's vocabulary to the adapter's saved embeddings, as a user does
    (model.resize_token_embeddings(len(tokenizer))) before PeftModel.from_pretrained."""
    from safetensors import safe_open
    with safe_open(f"{adapter_dir}/adapter_model.safetensors", "pt") as f:
        key = "base_model.model.model.embed_tokens.weight"
        if key in f.keys():
            rows = f.get_slice(key).get_shape()[0]
            if rows != model.get_input_embeddings().weight.shape[0]:
                model.resize_token_embeddings(rows)


def peft_make(model_dir, data, out_dir, targets, r, alpha, rslora, seed, modules_to_save=None, grow=0):
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(seed)
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets.split(","), lora_dropout=0.1,
                        use_rslora=rslora, task_type="CAUSAL_LM", modules_to_save=modules_to_save)
    base = load_base(model_dir)
    if grow:
        base.resize_token_embeddings(base.config.vocab_size + grow)
    model = get_peft_model(base, config)
    trainable, total = model.get_nb_trainable_parameters()
    with torch.no_grad():  # random A and B, not the zero init, so the adapter matters
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.normal_(0.0, 0.3)
            # PEFT saves lm_head's whole base weight beside its adapter (and loads it
            # back over the model's): change it, so that a reader ignoring it fails.
            if n.endswith("lm_head.base_layer.weight") or "modules_to_save" in n:
                p.add_(torch.randn_like(p) * 0.3)
    model.save_pretrained(out_dir)
    model.eval()
    loss, tokens = dataset_loss(model, read_jsonl(data))
    out = {"loss": loss, "tokens": tokens, "trainable": trainable, "total": total}
    json.dump(out, open(f"{out_dir}/reference.json", "w"))
    return out


if __name__ == "__main__":
    sys.exit(main())
