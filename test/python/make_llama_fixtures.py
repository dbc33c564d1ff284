#!/usr/bin/env python3
"""Reference fixtures for hyft's model tests, made by transformers itself.

For each named configuration: a tiny LlamaForCausalLM (or MistralForCausalLM) with
random weights saved as a Hugging Face folder, a pre-tokenized JSONL dataset, and
what transformers computes on them: logits (fp32, bf16), logits under the hybrid
attention mask (docs/ARCHITECTURE.md, "Hybrid attention") passed as a 4D attention mask, and the token-weighted
mean losses. hyft's tests compare against these numbers.

usage: make_llama_fixtures.py OUT_DIR [--only NAME ...] [--random N --seed S]
"""
import argparse
import json
import math
import os
import random
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

from hf_reference import dataset_loss

BASE = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
            rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2)

# name -> (config overrides, how to save)
CONFIGS = {
    "mha": (dict(), {}),
    "gqa_tied_linear": (dict(num_key_value_heads=2, tie_word_embeddings=True,
                             rope_parameters={"rope_type": "linear", "factor": 2.0,
                                              "rope_theta": 10000.0}),
                        {"dtype": torch.bfloat16, "old_style_config": True}),
    "mqa_dynamic": (dict(num_key_value_heads=1, max_position_embeddings=16,
                         rope_parameters={"rope_type": "dynamic", "factor": 2.0,
                                          "rope_theta": 500.0}),
                    {"old_style_config": True}),
    "llama3_bias_headdim": (dict(num_key_value_heads=2, head_dim=12, attention_bias=True,
                                 mlp_bias=True,
                                 rope_parameters={"rope_type": "llama3", "factor": 8.0,
                                                  "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                  "original_max_position_embeddings": 16,
                                                  "rope_theta": 10000.0}),
                            {"shard_size": "20KB", "dtype": torch.float16}),
    "mistral_window": (dict(num_key_value_heads=2, sliding_window=5), {"mistral": True}),
}

# (W, r) settings whose logits are recorded through an explicit 4D mask.
HYBRID = [(4, 0.25), (6, 0.0), (3, 0.5), (1, 0.2), (7, 0.3)]
T_LOGITS = 24


def global_stride(r):
    return 0 if r <= 0 else int(math.floor(1.0 / r + 0.5))


def may_attend(W, r, i, j):
    """The hybrid rule, written out once more independently of the C++ code."""
    if j > i:
        return False
    s = global_stride(r)
    return W == 0 or i - j < W or (s > 0 and (j % s == 0 or i % s == 0))


def additive_mask(W, r, T, dtype):
    allowed = torch.tensor([[may_attend(W, r, i, j) for j in range(T)] for i in range(T)])
    m = torch.zeros(T, T, dtype=dtype)
    m[~allowed] = torch.finfo(dtype).min
    return m[None, None]  # (1, 1, T, T)


def make_dataset(rng, vocab, n=7, min_len=3, max_len=T_LOGITS):
    data = []
    for k in range(n):
        L = rng.randint(min_len, max_len)
        ids = [rng.randrange(vocab) for _ in range(L)]
        rec = {"input_ids": ids}
        if k % 2 == 1:  # a masked prompt, as a completion record would have
            cut = rng.randint(1, L - 1)
            rec["labels"] = [-100] * cut + ids[cut:]
        data.append(rec)
    return data


def build(name, overrides, save, out_dir, seed):
    torch.manual_seed(seed)
    rng = random.Random(seed)
    cfg_kwargs = dict(BASE, **overrides)
    if save.get("mistral"):
        cfg_kwargs.pop("head_dim", None)
        config, cls = MistralConfig(**cfg_kwargs), MistralForCausalLM
    else:
        config, cls = LlamaConfig(**cfg_kwargs), LlamaForCausalLM
    config._attn_implementation = "eager"
    model = cls(config).eval()
    # Larger than the 0.02 init so that every layer matters to the logits.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
            elif "norm" in n:
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.1)
    stored_dtype = save.get("dtype", torch.float32)
    # Weights stored in a lower precision: the reference uses the rounded values.
    if stored_dtype != torch.float32:
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(stored_dtype).float())

    d = os.path.join(out_dir, name)
    model_dir = os.path.join(d, "model")
    os.makedirs(d, exist_ok=True)
    to_save = model if stored_dtype == torch.float32 else cls(config).to(stored_dtype)
    if stored_dtype != torch.float32:
        to_save.load_state_dict({k: v.to(stored_dtype) for k, v in model.state_dict().items()})
    kwargs = {"max_shard_size": save["shard_size"]} if "shard_size" in save else {}
    to_save.save_pretrained(model_dir, safe_serialization=True, **kwargs)
    if save.get("old_style_config"):
        # The layout most published checkpoints still use: rope_theta + rope_scaling.
        path = os.path.join(model_dir, "config.json")
        cj = json.load(open(path))
        rp = cj.pop("rope_parameters")
        cj["rope_theta"] = rp.pop("rope_theta")
        cj["rope_scaling"] = None if rp.get("rope_type") == "default" else {"type": rp.pop("rope_type"), **rp}
        cj["torch_dtype"] = cj.pop("dtype", "float32")
        json.dump(cj, open(path, "w"), indent=2)

    V = config.vocab_size
    ids = torch.randint(0, V, (2, T_LOGITS))
    tensors = {"input_ids": ids}
    with torch.no_grad():
        tensors["logits"] = model(ids).logits.float().contiguous()
        for W, r in HYBRID:
            m = additive_mask(W, r, T_LOGITS, torch.float32).expand(2, 1, T_LOGITS, T_LOGITS)
            tensors[f"logits_W{W}_r{r}"] = model(ids, attention_mask=m).logits.float().contiguous()
    data = make_dataset(rng, V)
    with open(os.path.join(d, "data.jsonl"), "w") as f:
        for rec in data:
            f.write(json.dumps(rec) + "\n")
    loss, tokens = dataset_loss(model, data)
    W, r = HYBRID[0]
    hybrid_loss, _ = dataset_loss(model, data, lambda T: additive_mask(W, r, T, torch.float32))
    ref = {"loss": loss, "tokens": tokens, "examples": len(data),
           "hybrid": {"window_size": W, "global_ratio": r, "loss": hybrid_loss},
           "hybrid_settings": [[W_, r_] for W_, r_ in HYBRID]}

    # bf16: the saved folder loaded in bf16, as transformers runs it.
    mb = cls.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="eager").eval()
    with torch.no_grad():
        tensors["logits_bf16"] = mb(ids).logits.float().contiguous()
    ref["loss_bf16"], _ = dataset_loss(mb, data)
    save_file(tensors, os.path.join(d, "reference.safetensors"))
    json.dump(ref, open(os.path.join(d, "reference.json"), "w"), indent=2)
    print(f"{name}: loss {loss:.6f} over {tokens} tokens (bf16 {ref['loss_bf16']:.6f})")


def random_config(rng):
    """A configuration the tests do not name, for scripts/check_parity.py."""
    heads = rng.choice([2, 4, 6, 8])
    kv = rng.choice([h for h in range(1, heads + 1) if heads % h == 0])
    head_dim = rng.choice([4, 8, 10, 16])
    rope = rng.choice(["default", "linear", "dynamic", "llama3"])
    o = dict(vocab_size=rng.randint(40, 300), hidden_size=rng.choice([16, 24, 48, 64]),
             intermediate_size=rng.randint(16, 100), num_hidden_layers=rng.randint(1, 4),
             num_attention_heads=heads, num_key_value_heads=kv, head_dim=head_dim,
             max_position_embeddings=rng.choice([12, 32, 64]),
             tie_word_embeddings=rng.random() < 0.5, attention_bias=rng.random() < 0.3,
             mlp_bias=rng.random() < 0.3, rms_norm_eps=rng.choice([1e-5, 1e-6]))
    theta = rng.choice([100.0, 10000.0, 500000.0])
    if rope == "default":
        o["rope_parameters"] = {"rope_type": "default", "rope_theta": theta}
    elif rope == "llama3":
        o["rope_parameters"] = {"rope_type": "llama3", "factor": rng.choice([2.0, 8.0]),
                                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": rng.choice([8, 16]),
                                "rope_theta": theta}
    else:
        o["rope_parameters"] = {"rope_type": rope, "factor": rng.choice([1.5, 2.0, 4.0]),
                                "rope_theta": theta}
    save = {"dtype": rng.choice([torch.float32, torch.bfloat16, torch.float16])}
    if rng.random() < 0.3:
        save["shard_size"] = "8KB"
    return o, save


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--random", type=int, default=0, help="make N unnamed random configurations")
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    os.makedirs(a.out, exist_ok=True)
    if a.random:
        rng = random.Random(a.seed)
        for k in range(a.random):
            o, save = random_config(rng)
            build(f"random{k}", o, save, a.out, a.seed + k)
            json.dump(o, open(os.path.join(a.out, f"random{k}", "overrides.json"), "w"), default=str)
        return
    for seed, (name, (o, save)) in enumerate(CONFIGS.items()):
        if a.only and name not in a.only:
            continue
        build(name, o, save, a.out, 1000 + seed)


if __name__ == "__main__":
    sys.exit(main())
