#!/usr/bin/env python3
"""PyTorch's own answers for hyft's trainer tests.

  torch_reference.py adamw IN.safetensors OUT.safetensors   5 AdamW steps (torch.optim.AdamW)
  torch_reference.py schedules WARMUP TOTAL PEAK            lr per step (transformers' schedulers)
  torch_reference.py scaler CASES.json                       GradScaler scale per step
  torch_reference.py tensorboard FILE                       scalars read back by tensorboard
"""
import json
import sys

import torch


def adamw(inp, out):
    from safetensors.torch import load_file, save_file
    t = load_file(inp)
    cfg = json.loads(bytes(t["config"].tolist()).decode())
    names = cfg["names"]
    params = {n: torch.nn.Parameter(t[f"{n}.init"].clone()) for n in names}
    groups = [{"params": [params[n] for n in names if n in cfg["decay"]], "weight_decay": cfg["weight_decay"]},
              {"params": [params[n] for n in names if n not in cfg["decay"]], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"])
    for step in range(cfg["steps"]):
        for g in opt.param_groups:
            g["lr"] = cfg["lrs"][step]
        for n in names:
            params[n].grad = t[f"{n}.grad{step}"].clone()
        opt.step()
    save_file({n: p.detach().contiguous() for n, p in params.items()}, out)
    print(json.dumps({"written": out}))


def schedules(warmup, total, peak):
    import transformers
    opt = lambda: torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    makers = {"constant": lambda o: transformers.get_constant_schedule_with_warmup(o, warmup),
              "linear": lambda o: transformers.get_linear_schedule_with_warmup(o, warmup, total),
              "cosine": lambda o: transformers.get_cosine_schedule_with_warmup(o, warmup, total)}
    out = {}
    for name, make in makers.items():
        o = opt()
        s = make(o)
        lrs = []
        for _ in range(total):
            lrs.append(o.param_groups[0]["lr"])
            o.step()
            s.step()
        out[name] = lrs
    print(json.dumps(out))


def scaler(spec_path):
    """Steps whose gradient holds inf are listed in spec['inf_steps']."""
    spec = json.load(open(spec_path))
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.0)
    s = torch.amp.GradScaler("cpu", init_scale=spec["init_scale"], growth_factor=2.0, backoff_factor=0.5,
                             growth_interval=spec["interval"])
    scales, skipped = [], []
    for step in range(spec["steps"]):
        loss = (p * s.get_scale()).sum() / s.get_scale()  # gradient 1 before scaling
        s.scale(loss).backward()
        if step in spec["inf_steps"]:
            p.grad[1] = float("inf")
        s.step(opt)
        s.update()
        scales.append(s.get_scale())
        opt.zero_grad()
    print(json.dumps({"scales": scales}))


def tensorboard(path):
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
    import struct
    # 1. Every record's CRCs, checked by hand.
    data = open(path, "rb").read()
    pos, records = 0, 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        assert hcrc == masked_crc32c(header), f"bad length CRC in record {records}"
        payload = data[pos + 12:pos + 12 + length]
        (pcrc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        assert pcrc == masked_crc32c(payload), f"bad payload CRC in record {records}"
        pos += 16 + length
        records += 1
    # 2. TensorBoard's own reader.
    scalars = {}
    version = None
    for raw in RawEventFileLoader(path).Load():
        ev = event_pb2.Event.FromString(raw)
        if ev.HasField("file_version"):
            version = ev.file_version
        for v in ev.summary.value:
            scalars.setdefault(v.tag, []).append([ev.step, v.simple_value])
    print(json.dumps({"records": records, "file_version": version, "scalars": scalars}))


def main():
    cmd = sys.argv[1]
    if cmd == "adamw":
        adamw(sys.argv[2], sys.argv[3])
    elif cmd == "schedules":
        schedules(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    elif cmd == "scaler":
        scaler(sys.argv[2])
    elif cmd == "tensorboard":
        tensorboard(sys.argv[2])


if __name__ == "__main__":
    main()
