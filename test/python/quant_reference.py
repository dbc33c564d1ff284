#!/usr/bin/env python3
"""bitsandbytes' own quantization of the weights in a safetensors file, for
hyft's byte-for-byte tests (CPU paths of bitsandbytes).

  quant_reference.py IN.safetensors OUT.safetensors

For each tensor W (out, in) of IN: NAME.nf4 (packed codes, uint8), NAME.nf4_absmax
(float32, blocks of 64) and NAME.nf4_dequant (float32) from quantize_4bit and the
default backend's dequantization; NAME.int8 and NAME.int8_absmax from
int8_vectorwise_quant (fp16 input, no outliers).

bitsandbytes 0.50.2's own CPU kernel for dequantize_4bit does not invert its
quantize_4bit on the CPU (errors of whole absmax units; its default backend and
its CUDA kernel do), so the dequantized reference comes from the default backend,
uncompiled (TORCHDYNAMO_DISABLE: compiling it takes half a minute a shape).

  quant_reference.py hf-eval MODEL DATA nf4|int8|int4

transformers' loss with every layer projection replaced by its quantization round
trip: bitsandbytes' for nf4 and int8; for int4 (hyft's own affine format, no
outside implementation exists) the format's definition transcribed below.
"""
import os
import sys

os.environ["TORCHDYNAMO_DISABLE"] = "1"
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
import bitsandbytes.functional as F  # noqa: E402
from bitsandbytes.backends.default import ops as default_ops  # noqa: E402


def int4_round_trip(w, block=64):
    """Affine 4-bit in blocks of `block` of the flattened weight: minimum m and
    scale s = (max - m) / 15 stored as float16; code = round((w - m) / s) in 0..15
    (0 when s is 0); value = code * s + m in float32."""
    flat = w.reshape(-1).float()
    n = flat.numel()
    pad = (-n) % block
    blocks = torch.cat([flat, flat[-1:].expand(pad)]).view(-1, block)
    lo, hi = blocks.min(1).values, blocks.max(1).values
    m = lo.half().float()[:, None]
    s = ((hi - lo) / 15.0).half().float()[:, None]
    codes = torch.where(s > 0, torch.round((blocks - m) / s.clamp_min(1e-30)), torch.zeros_like(blocks)).clamp(0, 15)
    return (codes * s + m).reshape(-1)[:n].view(w.shape)


if sys.argv[1] == "hf-eval":  # hf-eval MODEL DATA nf4|int8|int4: transformers' loss over the round trip
    sys.path.insert(0, os.path.dirname(__file__))
    import json  # noqa: E402
    from hf_reference import dataset_loss, load_base, read_jsonl  # noqa: E402
    model_dir, data, fmt = sys.argv[2:5]
    model = load_base(model_dir)
    code = default_ops._get_4bit_code("nf4", "cpu")
    with torch.no_grad():
        for name, module in model.named_modules():
            if not name.endswith(("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")):
                continue
            w = module.weight.data.float()
            if fmt == "nf4":
                packed, state = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=False)
                dq = default_ops._dequantize_4bit_compute(packed.reshape(-1), state.absmax, code, 64, tuple(w.shape),
                                                          torch.float32)
            elif fmt == "int4":
                dq = int4_round_trip(w)
            else:
                q, stats, _ = F.int8_vectorwise_quant(w.clone())
                dq = F.int8_vectorwise_dequant(q, stats)
            module.weight.data.copy_(dq)
    loss, tokens = dataset_loss(model, read_jsonl(data))
    print(json.dumps({"loss": loss, "tokens": tokens}))
    sys.exit(0)

src, dst = sys.argv[1:3]
out = {}
for name, w in load_file(src).items():
    packed, state = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=False)
    out[name + ".nf4"] = packed.reshape(-1).contiguous()
    out[name + ".nf4_absmax"] = state.absmax.float().contiguous()
    code = default_ops._get_4bit_code("nf4", packed.device)
    out[name + ".nf4_dequant"] = default_ops._dequantize_4bit_compute(
        packed.reshape(-1), state.absmax, code, 64, tuple(w.shape), torch.float32).contiguous()
    q, absmax, _ = F.int8_vectorwise_quant(w.half().clone())
    out[name + ".int8"] = q.contiguous()
    out[name + ".int8_absmax"] = absmax.float().contiguous()
save_file(out, dst)
