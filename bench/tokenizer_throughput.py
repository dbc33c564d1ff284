"""Encode throughput of tokenizer.json: `hyft tokenizer encode` against the
`tokenizers` package's encode_batch (Rust, parallel through rayon), on a mixed
corpus made here (seeded): words of several scripts drawn from Zipf-distributed
vocabularies (English-like, Cyrillic, Greek, Chinese, Korean), code, numbers,
emoji, whitespace runs. The tokenizer is a DeepSeek-layout byte-level BPE of
32,000 entries trained by the package on the first 10 MB.

Each side runs on 1 thread and on every core; hyft's time is the whole command
(load, read the JSONL, encode, print), the package's only encode_batch. The id
lists must be equal (a SHA-256 over both outputs). One JSON line per run.

usage: python bench/tokenizer_throughput.py [--mb 100] [--dir /tmp/tokbench] [--hyft build/bin/hyft]
"""
import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "test", "python"))
from bpe_reference import pre_tokenizer  # noqa: E402  (the DeepSeek layout of the tests)
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402


def zipf_vocab(rng, alphabet, n, lo, hi):
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


def make_corpus(path, megabytes, seed=0):
    rng = random.Random(seed)
    latin = zipf_vocab(rng, "etaoinshrdlucmfwypvbgkjqxz", 30000, 1, 12)
    cyr = zipf_vocab(rng, "оеаинтсрвлкмдпуяызьбгчйхжшюцщэфъё", 20000, 2, 11)
    greek = zipf_vocab(rng, "αβγδεζηθικλμνξοπρστυφχψω", 5000, 2, 10)
    han = [chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(6000)]
    hangul = [chr(rng.randint(0xAC00, 0xD7A3)) for _ in range(3000)]
    emoji = ["😀", "🚀", "🔥", "👍🏽", "🇨🇳", "👨‍👩‍👧", "🦜", "✨"]
    code = ["def", "return", "if", "else", "for", "in", "range", "int", "void", "{", "}", "(", ")", "==", "+=",
            "->", "::", "std::vector<int>", "self.", "import", "#include", "    ", "\t", "\n"]
    weights = [1.0 / (i + 1) for i in range(30000)]

    def words(vocab, k):
        return rng.choices(vocab, weights=weights[:len(vocab)], k=k)

    out = open(path, "w", encoding="utf-8")
    size = 0
    while size < megabytes * 1_000_000:
        kind = rng.random()
        if kind < 0.45:
            parts = words(latin, rng.randint(40, 600))
            text = " ".join(w.capitalize() if rng.random() < 0.05 else w for w in parts) + "."
        elif kind < 0.6:
            text = " ".join(words(cyr, rng.randint(40, 400)))
        elif kind < 0.65:
            text = " ".join(words(greek, rng.randint(20, 200)))
        elif kind < 0.8:
            text = "".join(words(han, rng.randint(50, 800))) + "。" + "".join(words(hangul, rng.randint(0, 100)))
        elif kind < 0.95:
            text = " ".join(rng.choice(code) if rng.random() < 0.6 else rng.choice(latin) + "_" + str(rng.randint(0, 99))
                            for _ in range(rng.randint(50, 500)))
        else:
            text = " ".join(f"{rng.randint(0, 10**rng.randint(1, 9))}" + rng.choice(emoji + ["", " ", "  "])
                            for _ in range(rng.randint(20, 200)))
        line = json.dumps({"text": text}, ensure_ascii=False) + "\n"
        out.write(line)
        size += len(line.encode("utf-8"))
    out.close()


def train(corpus, out):
    texts = []
    with open(corpus, encoding="utf-8") as f:
        size = 0
        for line in f:
            texts.append(json.loads(line)["text"])
            size += len(line)
            if size > 10_000_000:
                break
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer("deepseek")
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=32000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"))


def run_hyft(hyft, tok_dir, corpus, threads):
    t0 = time.perf_counter()
    out = subprocess.run([hyft, "tokenizer", "encode", "--tokenizer", tok_dir, "--input", corpus, "--no-special",
                          "--threads", str(threads)], check=True, capture_output=True).stdout
    return time.perf_counter() - t0, hashlib.sha256(out).hexdigest()


def run_package(tok_dir, corpus, threads):
    code = f"""
import json, time, hashlib, sys
from tokenizers import Tokenizer
tok = Tokenizer.from_file({os.path.join(tok_dir, 'tokenizer.json')!r})
texts = [json.loads(l)["text"] for l in open({corpus!r}, encoding="utf-8")]
t0 = time.perf_counter()
enc = tok.encode_batch(texts, add_special_tokens=False)
dt = time.perf_counter() - t0
h = hashlib.sha256("".join(json.dumps(e.ids, separators=(",", ":")) + "\\n" for e in enc).encode()).hexdigest()
print(json.dumps({{"seconds": dt, "sha": h}}))
"""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    r = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env).stdout)
    return r["seconds"], r["sha"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--dir", default="/tmp/tokbench")
    ap.add_argument("--hyft", default="build/bin/hyft")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    corpus = os.path.join(a.dir, f"mixed-{a.mb}mb.jsonl")
    if not os.path.exists(corpus):
        make_corpus(corpus, a.mb)
    tok_dir = os.path.join(a.dir, "tok")
    if not os.path.exists(os.path.join(tok_dir, "tokenizer.json")):
        train(corpus, tok_dir)
    mb = os.path.getsize(corpus) / 1e6
    cores = os.cpu_count()
    for threads in sorted({1, cores}):
        hs, hsha = run_hyft(a.hyft, tok_dir, corpus, threads)
        ps, psha = run_package(tok_dir, corpus, threads)
        print(json.dumps({"corpus_mb": round(mb, 1), "threads": threads, "hyft_s": round(hs, 2),
                          "hyft_mb_per_s": round(mb / hs, 2), "tokenizers_s": round(ps, 2),
                          "tokenizers_mb_per_s": round(mb / ps, 2), "hyft_over_tokenizers": round(ps / hs, 2),
                          "ids_equal": hsha == psha}), flush=True)


if __name__ == "__main__":
    main()
