#!/usr/bin/env python3
"""The decoding peer of `hyft bench --decode`: transformers' generate on the same
shape (random weights, bf16, CUDA), batch = streams, greedy, exactly NEW tokens,
timed the same way (NEW tokens minus 1 token, so prefill is left out). With
--no-cache, generate(use_cache=False): the gain of the KV cache.

  python3 bench/decode_peer.py --shape 1.3b --streams 1,32 --prompt-len 128 --new-tokens 256 [--no-cache]

One JSON line per stream count, with hyft bench --decode's fields.
"""
import argparse
import json
import os
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "peers"))
from hf_peft_bench import SHAPES  # noqa: E402  (the training peer's shapes: the same models)

ap = argparse.ArgumentParser()
ap.add_argument("--shape", default="1.3b")
ap.add_argument("--streams", default="1,32")
ap.add_argument("--prompt-len", type=int, default=128)
ap.add_argument("--new-tokens", type=int, default=256)
ap.add_argument("--no-cache", action="store_true")
a = ap.parse_args()

torch.manual_seed(0)
cfg = LlamaConfig(max_position_embeddings=max(4096, a.prompt_len + a.new_tokens), rms_norm_eps=1e-6,
                  tie_word_embeddings=False, **SHAPES[a.shape])
with torch.device("cuda"):
    model = LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa", torch_dtype=torch.bfloat16).eval()


def run(n, tokens):
    ids = torch.randint(0, cfg.vocab_size, (n, a.prompt_len), device="cuda")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.no_grad():
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, min_new_tokens=tokens,
                       do_sample=False, use_cache=not a.no_cache, pad_token_id=0)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


for n in [int(x) for x in a.streams.split(",")]:
    run(n, 8)
    decode = max(1e-9, run(n, a.new_tokens) - run(n, 1))
    tps = n * (a.new_tokens - 1) / decode
    print(json.dumps(dict(system="transformers" + ("-nocache" if a.no_cache else ""), shape=a.shape,
                          precision="bf16", streams=n, prompt_len=a.prompt_len, new_tokens=a.new_tokens,
                          decode_tokens_per_s=round(tps, 1), per_stream_tokens_per_s=round(tps / n, 1),
                          ms_per_step=round(1000 * decode / (a.new_tokens - 1), 3), torch=torch.__version__)),
          flush=True)
