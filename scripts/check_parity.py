#!/usr/bin/env python3
"""Checks `hyft eval --json` against transformers on random configurations that no
test names: random sizes, head counts, head_dim, rope_scaling, tying, biases,
stored dtype and sharding (test/python/make_llama_fixtures.py --random).

usage: .venv/bin/python scripts/check_parity.py [--n 8] [--seed 99] [--hyft build/bin/hyft]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--hyft", default=os.path.join(root, "build", "bin", "hyft"))
    a = ap.parse_args()
    out = tempfile.mkdtemp(prefix="hyft-parity-")
    subprocess.run([sys.executable, os.path.join(root, "test", "python", "make_llama_fixtures.py"), out,
                    "--random", str(a.n), "--seed", str(a.seed)], check=True, stdout=subprocess.DEVNULL)
    worst = {"fp32": 0.0, "hybrid": 0.0, "bf16": 0.0}
    print(f"{'config':<9} {'rope':<8} {'H/Hkv/Dh':<9} {'fp32 rel':>9} {'hybrid rel':>10} {'bf16 rel':>9}")
    for k in range(a.n):
        d = os.path.join(out, f"random{k}")
        ref = json.load(open(os.path.join(d, "reference.json")))
        o = json.load(open(os.path.join(d, "overrides.json")))
        base = [a.hyft, "eval", "--json", "--device", "cpu", "--model", os.path.join(d, "model"),
                "--data", os.path.join(d, "data.jsonl"), "--micro-batch", "4"]
        h = ref["hybrid"]
        runs = {"fp32": (base, ref["loss"]),
                "hybrid": (base + ["--window-size", str(h["window_size"]), "--global-ratio", str(h["global_ratio"])],
                           h["loss"]),
                "bf16": (base + ["--precision", "bf16"], ref["loss_bf16"])}
        rel = {}
        for what, (cmd, expect) in runs.items():
            got = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["loss"]
            rel[what] = abs(got - expect) / abs(expect)
            worst[what] = max(worst[what], rel[what])
        rope = o["rope_parameters"]["rope_type"]
        shape = f"{o['num_attention_heads']}/{o['num_key_value_heads']}/{o['head_dim']}"
        print(f"random{k:<3} {rope:<8} {shape:<9} {rel['fp32']:>9.2g} {rel['hybrid']:>10.2g} {rel['bf16']:>9.2g}")
    print(f"worst relative loss difference: fp32 {worst['fp32']:.2g}, hybrid {worst['hybrid']:.2g}, "
          f"bf16 {worst['bf16']:.2g}")
    ok = worst["fp32"] < 1e-5 and worst["hybrid"] < 1e-5 and worst["bf16"] < 2e-3
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
