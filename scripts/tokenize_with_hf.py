#!/usr/bin/env python3
"""Pre-tokenize a dataset with a tokenizer hyft does not run itself, such as the
byte-level BPE `tokenizer.json` of DeepSeek-LLM / DeepSeek-Coder or Llama 3.

hyft renders the records (its templates, loss masks and BOS/EOS rules) and this
script only encodes the rendered text, as hyft does: the text between two special
tokens encoded whole, each token's loss taken from the segment its last character
lies in. The result is what hyft would build with that tokenizer:

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


def sp_spans(sp, text):
    """(id, begin, end) of each SentencePiece piece of `text`, offsets in characters.
    sentencepiece 0.2.1+ gives byte offsets through return_type="proto"; older
    releases character offsets through out_type="immutable_proto"."""
    try:
        pieces = sp.encode(text, return_type="proto").pieces
    except TypeError:
        return [(p.id, p.begin, p.end) for p in sp.encode(text, out_type="immutable_proto").pieces]
    data = text.encode()
    chars = lambda b: len(data[:b].decode(errors="ignore"))
    return [(p.id, chars(p.begin), chars(p.end)) for p in pieces]


def after_lead(spans, lead_len):
    """(ids, ends) of the pieces past a lead of `lead_len` characters, ends made
    relative to the text after it; a piece that covers nothing gets its predecessor's end."""
    ids, ends, prev = [], [], 0
    for pid, begin, end in spans:
        if lead_len and end <= lead_len:
            continue
        end = end - lead_len if end > begin else prev
        ids.append(pid)
        ends.append(end)
        prev = end
    return ids, ends


def load_encoder(args):
    """Returns (encode(text, starts_input) -> (ids, ends), bos id or None, eos id or None).

    `ends[i]` is where token i ends in `text` (the unit of a length of `text`:
    characters); a token that covers nothing of its own gets its predecessor's.
    `starts_input` False encodes the text as it follows a special token (no
    SentencePiece "▁" prefix), as transformers does inside a chat template."""
    if args.tokenizer:
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=args.tokenizer)
        bos, eos = sp.bos_id(), sp.eos_id()
        lead_text = sp.id_to_piece(sp.unk_id())

        def encode(text, starts_input):
            lead = "" if starts_input else lead_text  # "<unk>" + text, its pieces dropped
            return after_lead(sp_spans(sp, lead + text), len(lead))
        return encode, (bos if bos >= 0 else None), (eos if eos >= 0 else None)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    config = json.load(open(os.path.join(args.model, "config.json")))
    eos = config.get("eos_token_id")
    if isinstance(eos, list):
        eos = eos[0]
    eos_text = tok.id_to_token(eos) if eos is not None else ""

    def encode(text, starts_input):
        lead = "" if starts_input else eos_text  # text after a special token
        enc = tok.encode(lead + text, add_special_tokens=False)
        return after_lead([(tid, b, e) for tid, (b, e) in zip(enc.ids, enc.offsets)], len(lead))
    return encode, config.get("bos_token_id"), eos


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
                run, parts = "", []  # text since the last special token; (end, trains) per segment
                starts_input = [r.get("kind") != "messages"]

                def add(tid, train):
                    ids.append(tid)
                    labels.append(tid if train else -100)

                def flush():
                    nonlocal run, parts
                    if run:
                        seg = 0
                        for tid, end in zip(*encode(run, starts_input[0])):
                            last = max(end - 1, 0)
                            while seg + 1 < len(parts) and last >= parts[seg][0]:
                                seg += 1
                            add(tid, parts[seg][1] or args.train_on_prompt)
                        starts_input[0] = False
                    run, parts = "", []

                if bos is not None:
                    add(bos, False)
                for seg in r["segments"]:
                    if "special" in seg:
                        flush()
                        tid = bos if seg["special"] == "bos" else eos
                        if tid is not None:
                            add(tid, seg["train"])  # EOS always trains, BOS never
                    elif seg["text"]:
                        run += seg["text"]
                        parts.append((len(run), seg["train"]))
                flush()
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
