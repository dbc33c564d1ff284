#!/usr/bin/env python3
"""bitsandbytes' own quantization of the weights in a safetensors file, for
hyft's byte-for-byte tests (CPU paths of bitsandbytes).

  quant_reference.py IN.safetensors OUT.safetensors

For each tensor W (out, in) of IN: NAME.nf4 (packed codes, uint8), NAME.nf4_absmax
(float32, blocks of 64) and NAME.nf4_dequant (float32) from quantize_4bit and the
default backend's dequantization; the same with compress_statistics=True (double
quantization) as NAME.nf4dq, NAME.nf4dq_qabsmax (uint8), NAME.nf4dq_absmax2,
NAME.nf4dq_offset and NAME.nf4dq_dequant, and bitsandbytes' dynamic map as
dynamic_map; NAME.int8 and NAME.int8_absmax from int8_vectorwise_quant (fp16
input, no outliers).

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


def nf4_round_trip(w, double_quant):
    """bitsandbytes' quantize_4bit (NF4, blocks of 64) and the default backend's
    dequantization: (packed, state, dequantized float32)."""
    packed, state = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=double_quant)
    absmax = state.absmax
    if double_quant:  # as dequantize_4bit: the nested absmax decoded, then + offset
        absmax = default_ops._dequantize_blockwise_compute(state.absmax.reshape(-1), state.state2.absmax,
                                                           state.state2.code, 256, torch.float32) + state.offset
    code = default_ops._get_4bit_code("nf4", packed.device)
    dq = default_ops._dequantize_4bit_compute(packed.reshape(-1), absmax, code, 64, tuple(w.shape), torch.float32)
    return packed, state, dq


if sys.argv[1] == "hf-eval":  # hf-eval MODEL DATA nf4|nf4-dq|int8|int4: transformers' loss over the round trip
    sys.path.insert(0, os.path.dirname(__file__))
    import json  # noqa: E402
    from hf_reference import dataset_loss, load_base, read_jsonl  # noqa: E402
    model_dir, data, fmt = sys.argv[2:5]
    model = load_base(model_dir)
    with torch.no_grad():
        for name, module in model.named_modules():
            if not name.endswith(("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")):
                continue
            w = module.weight.data.float()
            if fmt in ("nf4", "nf4-dq"):
                dq = nf4_round_trip(w, fmt == "nf4-dq")[2]
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
    packed, state, dq = nf4_round_trip(w, False)
    out[name + ".nf4"] = packed.reshape(-1).contiguous()
    out[name + ".nf4_absmax"] = state.absmax.float().contiguous()
    out[name + ".nf4_dequant"] = dq.contiguous()
    packed, state, dq = nf4_round_trip(w, True)
    out[name + ".nf4dq"] = packed.reshape(-1).contiguous()
    out[name + ".nf4dq_qabsmax"] = state.absmax.reshape(-1).contiguous()
    out[name + ".nf4dq_absmax2"] = state.state2.absmax.float().contiguous()
    out[name + ".nf4dq_offset"] = state.offset.float().reshape(1).contiguous()
    out[name + ".nf4dq_dequant"] = dq.contiguous()
    out["dynamic_map"] = state.state2.code.float().contiguous()
    q, absmax, _ = F.int8_vectorwise_quant(w.half().clone())
    out[name + ".int8"] = q.contiguous()
    out[name + ".int8_absmax"] = absmax.float().contiguous()
save_file(out, dst)
