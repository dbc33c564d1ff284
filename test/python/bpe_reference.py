"""Byte-level BPE tokenizers made by the `tokenizers` package, and its ids, for
hyft's tokenizer.json reader (test/tokenizer/test_tokenizer.cpp).

    python bpe_reference.py make OUT_DIR CORPUS     # OUT_DIR/<style>/tokenizer.json
    python bpe_reference.py encode TOKENIZER_JSON TEXTS_JSON   # {"ids": [...], "decoded": [...]}

Styles: the pre-tokenizer layouts of GPT-2 (ByteLevel with its regex), Llama 3 (one
Split regex, ignore_merges), DeepSeek-LLM and DeepSeek-Coder (Sequences of Splits,
Digits and ByteLevel), Qwen2 (NFC, then a Llama 3-like regex), each with special
tokens and a BOS template; and two
SentencePiece-like layouts over characters with byte_fallback: Llama 2's
(normalizer Prepend + Replace) and Metaspace's, with added tokens that rstrip and lstrip.
"""
import json
import os
import sys

from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors,
                        trainers)

LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
          r"\s*[\r\n]+|\s+(?!\S)|\s+")
# DeepSeek's letter class, shortened to its Latin, Greek, Cyrillic and Armenian ranges.
DEEPSEEK_LETTERS = r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-Ֆ]+"


def pre_tokenizer(style):
    if style == "gpt2":
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if style in ("llama3", "qwen2"):  # Qwen2: the Llama 3 regex with single digits, after NFC
        pattern = LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}") if style == "qwen2" else LLAMA3
        return pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    if style == "deepseek_coder":  # letters and punctuation by Unicode class, CJK runs, single digits
        return pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(r"[\r\n]"), behavior="isolated"),
            pre_tokenizers.Split(Regex(r"\s?\p{L}+"), behavior="isolated"),
            pre_tokenizers.Split(Regex(r"\s?\p{P}+"), behavior="isolated"),
            pre_tokenizers.Split(Regex(r"[一-龥ࠀ-一가-퟿]+"), behavior="isolated"),
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    return pre_tokenizers.Sequence([  # deepseek (DeepSeek-LLM)
        pre_tokenizers.Split(Regex(r"[\r\n]"), behavior="isolated"),
        pre_tokenizers.Split(Regex(DEEPSEEK_LETTERS), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"\s?[!-/:-~！-／：-～‘-‟　-。]+"), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"\s+$"), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"[一-龥ࠀ-一가-퟿]+"), behavior="isolated"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def with_byte_tokens(tok):
    """The 256 <0xXX> byte tokens appended to the vocabulary (as Llama 2's has them)."""
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    top = max(max(vocab.values()), max(a["id"] for a in j["added_tokens"]))
    for b in range(256):
        vocab.setdefault(f"<0x{b:02X}>", top + 1 + b)
    return Tokenizer.from_str(json.dumps(j))


def make_spm_style(out_dir, lines, style):
    """SentencePiece-like BPEs over characters with byte_fallback: Llama 2's layout
    (normalizer Prepend + Replace, decoders Replace, ByteFallback, Fuse, Strip) and the
    Metaspace layout (pre-tokenizer and decoder Metaspace, prepend_scheme first)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    if style == "llama2":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
            pre_tokenizers.Punctuation()])
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    specials = ["<unk>", "<|begin_of_text|>", "<|end_of_text|>"]
    # A small alphabet: characters outside it reach the model as byte tokens.
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=specials, limit_alphabet=120, show_progress=False)
    tok.train_from_iterator(lines, trainer)
    tok = with_byte_tokens(tok)
    tok.add_special_tokens([AddedToken("<|im_start|>", normalized=False),
                            AddedToken("<|im_end|>", normalized=False, rstrip=True),
                            AddedToken("<mask>", lstrip=True, normalized=False, single_word=False)])
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    os.makedirs(f"{out_dir}/{style}", exist_ok=True)
    tok.save(f"{out_dir}/{style}/tokenizer.json")


def make(out_dir, corpus):
    lines = open(corpus, encoding="utf-8").read().splitlines()
    for style in ("llama2", "metaspace"):
        make_spm_style(out_dir, lines, style)
    for style in ("gpt2", "llama3", "deepseek", "deepseek_coder", "qwen2"):
        tok = Tokenizer(models.BPE(ignore_merges=(style == "llama3")))
        if style == "qwen2":
            tok.normalizer = normalizers.NFC()
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
    print(json.dumps({"styles": ["gpt2", "llama3", "deepseek", "deepseek_coder", "qwen2", "llama2", "metaspace"]}))


def encode(path, texts_path):
    tok = Tokenizer.from_file(path)
    texts = json.load(open(texts_path, encoding="utf-8"))
    ids = [tok.encode(t, add_special_tokens=False).ids for t in texts]
    # Every prefix of every encoding decoded too: cut multi-byte characters show how
    # invalid UTF-8 is replaced.
    prefixes = [[tok.decode(i[:k], skip_special_tokens=False) for k in range(len(i))] for i in ids]
    print(json.dumps({"ids": ids, "decoded": [tok.decode(i, skip_special_tokens=False) for i in ids],
                      "decoded_prefixes": prefixes, "bos": tok.token_to_id("<|begin_of_text|>")}))


if __name__ == "__main__":
    {"make": make, "encode": encode}[sys.argv[1]](*sys.argv[2:])
