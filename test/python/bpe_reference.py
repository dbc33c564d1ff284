"""Byte-level BPE tokenizers made by the `tokenizers` package, and its ids, for
hyft's tokenizer.json reader (test/tokenizer/test_tokenizer.cpp).

    python bpe_reference.py make OUT_DIR CORPUS     # OUT_DIR/<style>/tokenizer.json
    python bpe_reference.py encode TOKENIZER_JSON TEXTS_JSON   # {"ids": [...], "decoded": [...]}

Styles: the pre-tokenizer layouts of GPT-2 (ByteLevel with its regex), Llama 3 (one
Split regex, ignore_merges) and DeepSeek-LLM / DeepSeek-Coder (a Sequence of Splits,
Digits and ByteLevel), each with special tokens and a BOS template.
"""
import json
import os
import sys

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
          r"\s*[\r\n]+|\s+(?!\S)|\s+")
# DeepSeek's letter class, shortened to its Latin, Greek, Cyrillic and Armenian ranges.
DEEPSEEK_LETTERS = r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-Ֆ]+"


def pre_tokenizer(style):
    if style == "gpt2":
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if style == "llama3":
        return pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    return pre_tokenizers.Sequence([  # deepseek
        pre_tokenizers.Split(Regex(r"[\r\n]"), behavior="isolated"),
        pre_tokenizers.Split(Regex(DEEPSEEK_LETTERS), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"\s?[!-/:-~！-／：-～‘-‟　-。]+"), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"\s+$"), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"[一-龥ࠀ-一가-퟿]+"), behavior="isolated"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def make(out_dir, corpus):
    lines = open(corpus, encoding="utf-8").read().splitlines()
    for style in ("gpt2", "llama3", "deepseek"):
        tok = Tokenizer(models.BPE(ignore_merges=(style == "llama3")))
        tok.pre_tokenizer = pre_tokenizer(style)
        tok.decoder = decoders.ByteLevel()
        specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>"]
        trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(lines, trainer)
        tok.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
        os.makedirs(f"{out_dir}/{style}", exist_ok=True)
        tok.save(f"{out_dir}/{style}/tokenizer.json")
    print(json.dumps({"styles": ["gpt2", "llama3", "deepseek"]}))


def encode(path, texts_path):
    tok = Tokenizer.from_file(path)
    texts = json.load(open(texts_path, encoding="utf-8"))
    ids = [tok.encode(t, add_special_tokens=False).ids for t in texts]
    print(json.dumps({"ids": ids, "decoded": [tok.decode(i, skip_special_tokens=False) for i in ids],
                      "bos": tok.token_to_id("<|begin_of_text|>")}))


if __name__ == "__main__":
    {"make": make, "encode": encode}[sys.argv[1]](*sys.argv[2:])
