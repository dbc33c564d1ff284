#!/usr/bin/env python3
"""Data-preparation throughput: `hyft data stats` (read, render, tokenize a JSONL)
against a Python baseline doing the same work with json + the sentencepiece package,
on the same file in the same run.

usage: .venv/bin/python bench/data_prep.py [--mb 100] [--tokenizer FILE.model] [--hyft build/bin/hyft]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ALPACA_HEAD = ("Below is an instruction that describes a task. Write a response that appropriately completes "
               "the request.\n\n### Instruction:\n")


def make_file(path, mb, seed=0):
    rng = random.Random(seed)
    corpus = open(os.path.join(root, "test", "data", "tokenizer_corpus.txt"), encoding="utf-8").read().split("\n")
    corpus = [c for c in corpus if c]
    size = 0
    with open(path, "w", encoding="utf-8") as f:
        i = 0
        while size < mb * 1_000_000:
            body = " ".join(rng.choice(corpus) for _ in range(rng.randint(1, 12)))
            if i % 3 == 0:
                rec = {"text": body}
            elif i % 3 == 1:
                rec = {"prompt": body, "completion": rng.choice(["低风险", "高风险"]), "label": "x"}
            else:
                rec = {"instruction": body[:200], "input": "", "output": body[200:400] or "ok"}
            line = json.dumps(rec, ensure_ascii=False) + "\n"
            f.write(line)
            size += len(line.encode("utf-8"))
            i += 1
    return i


def python_baseline(path, model, max_len=2048):
    """Reads, renders and tokenizes every record as hyft does (BOS, EOS, labels)."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=model)
    bos, eos = sp.bos_id(), sp.eos_id()
    n = tokens = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if "text" in r:
                parts = [(r["text"], True)]
            elif "prompt" in r:
                parts = [(r["prompt"], False), (r["completion"], True)]
            else:
                parts = [(ALPACA_HEAD + r["instruction"] + "\n\n### Response:\n", False), (r["output"], True)]
            ids, labels = [bos], [-100]
            for text, train in parts:
                p = sp.encode(text)
                ids += p
                labels += p if train else [-100] * len(p)
            ids.append(eos)
            labels.append(eos)
            ids, labels = ids[:max_len], labels[:max_len]
            n += 1
            tokens += len(ids)
    return n, tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--tokenizer", default=os.path.join(root, "build", "test-fixtures", "tokenizer", "test.model"))
    ap.add_argument("--hyft", default=os.path.join(root, "build", "bin", "hyft"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "data.jsonl")
        records = make_file(path, a.mb)
        size_mb = os.path.getsize(path) / 1e6
        t = time.perf_counter()
        out = subprocess.run([a.hyft, "data", "stats", "--json", "--data", path, "--tokenizer", a.tokenizer],
                             check=True, capture_output=True, text=True).stdout
        hyft_s = time.perf_counter() - t
        stats = json.loads(out)
        t = time.perf_counter()
        n, tokens = python_baseline(path, a.tokenizer)
        py_s = time.perf_counter() - t
        assert n == records == stats["records"], (n, records, stats["records"])
        assert tokens == stats["tokens"], ("token counts differ", tokens, stats["tokens"])
        print(json.dumps({"file_mb": round(size_mb, 1), "records": records, "tokens": tokens,
                          "cores": os.cpu_count(),
                          "hyft_s": round(hyft_s, 2), "hyft_records_per_s": round(records / hyft_s),
                          "python_s": round(py_s, 2), "python_records_per_s": round(records / py_s),
                          "speedup": round(py_s / hyft_s, 2)}))


if __name__ == "__main__":
    sys.exit(main())
