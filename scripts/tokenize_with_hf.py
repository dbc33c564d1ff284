#!/usr/bin/env python3
"""Pre-tokenize a dataset with a tokenizer hyft does not run itself, such as the
byte-level BPE `tokenizer.json` of DeepSeek-LLM / DeepSeek-Coder or Llama 3.

hyft renders the records (its templates, loss masks and BOS/EOS rules) and this
script only encodes the rendered text, so the result is what hyft would build with
that tokenizer:

    build/bin/hyft data render --data train.jsonl --output rendered.jsonl [--chat-template chatml]
    python3 scripts/tokenize_with_hf.py rendered.jsonl train.tok.jsonl --model path/to/deepseek-model
    build/bin/hyft finetune --model path/to/deepseek-model --train train.tok.jsonl ...

--model takes a folder with tokenizer.json (read with the `tokenizers` package)
and config.json (bos_token_id, eos_token_id); --tokenizer FILE.model uses a
SentencePiece model instead. --train-on-prompt puts the loss on prompts too.
"""
import argparse
import json
import os
import sys


def load_encoder(args):
    """Returns (encode(text) -> ids, bos id or None, eos id or None)."""
    if args.tokenizer:
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=args.tokenizer)
        bos, eos = sp.bos_id(), sp.eos_id()
        return sp.encode, (bos if bos >= 0 else None), (eos if eos >= 0 else None)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    config = json.load(open(os.path.join(args.model, "config.json")))
    eos = config.get("eos_token_id")
    if isinstance(eos, list):
        eos = eos[0]
    return (lambda text: tok.encode(text, add_special_tokens=False).ids), config.get("bos_token_id"), eos


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rendered", help="output of `hyft data render`")
    ap.add_argument("output", help="pre-tokenized JSONL to write")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model folder with tokenizer.json and config.json")
    src.add_argument("--tokenizer", help="SentencePiece .model file")
    ap.add_argument("--train-on-prompt", action="store_true")
    args = ap.parse_args()
    encode, bos, eos = load_encoder(args)
    tmp = args.output + ".tmp"
    with open(args.rendered, encoding="utf-8") as f, open(tmp, "w", encoding="utf-8") as out:
        for n, line in enumerate(f, 1):
            r = json.loads(line)
            if "segments" in r:
                ids, labels = [], []

                def add(tokens, train):
                    ids.extend(tokens)
                    labels.extend(tokens if train else [-100] * len(tokens))

                if bos is not None:
                    add([bos], False)
                for seg in r["segments"]:
                    if "special" in seg:
                        tid = bos if seg["special"] == "bos" else eos
                        if tid is not None:
                            add([tid], seg["train"])  # EOS always trains, BOS never
                    elif seg["text"]:
                        add(encode(seg["text"]), seg["train"] or args.train_on_prompt)
            else:
                ids, labels = r["input_ids"], r["labels"]
            rec = {"input_ids": ids, "labels": labels, "weight": r["weight"]}
            if "label" in r:
                rec["label"] = r["label"]
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, args.output)
    print(f"wrote {args.output}: {n} records")


if __name__ == "__main__":
    sys.exit(main())
