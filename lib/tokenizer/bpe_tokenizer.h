// BPE tokenizers read from Hugging Face's tokenizer.json, applied natively with the
// ids of the `tokenizers` package: byte-level ones (GPT-2, Llama 3, DeepSeek-LLM and
// DeepSeek-Coder style) and SentencePiece-like ones over characters (Llama 2 /
// TinyLlama / Mistral style, byte_fallback):
//   added tokens   matched first (leftmost, longest; lstrip, rstrip, single_word);
//                  normalized ones in the normalized text, the others in the raw text
//   normalizer     Prepend, Replace, Sequence (tokenizer/text_steps.h)
//   pre-tokenizer  ByteLevel (add_prefix_space, use_regex with GPT-2's pattern), Split
//                  (a Unicode regex through PCRE2, or a string; behaviors Isolated,
//                  Removed, MergedWithPrevious, MergedWithNext), Digits, Punctuation,
//                  Metaspace (first in the list), Sequence
//   model          BPE: merges as "a b" strings or [a, b] pairs, ignore_merges, unk,
//                  byte_fallback, fuse_unk
//   decoder        ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence
// A part hyft does not implement (Lowercase or Bert normalizers, Whitespace, WordPiece, ...)
// is refused by name: the file is never tokenized differently. The post-processor's
// BOS/EOS are the caller's business, as with SentencePiece (bos_id()).
#pragma once

#include "tokenizer/token_spans.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hyft::tokenizer {

// Whether this build reads tokenizer.json (it needs PCRE2 for the Split regexes).
bool bpe_supported();

class BpeTokenizer {
 public:
  // Reads and checks `path` (a tokenizer.json); a part hyft does not implement, or a
  // malformed file, is a UserError naming the part.
  explicit BpeTokenizer(const std::string& path);
  ~BpeTokenizer();
  BpeTokenizer(BpeTokenizer&&) noexcept;

  // Text (valid UTF-8) -> ids, without the post-processor's special tokens.
  std::vector<int64_t> encode(const std::string& text) const;
  // The same ids with, for each, the byte offset in `text` where it ends.
  TokenSpans encode_with_ends(const std::string& text) const;
  // The vocabulary entry of `id` (byte-level characters), or the added token's text.
  std::string token(int64_t id) const;
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t vocab_size() const;                                // the largest id + 1
  std::optional<int64_t> token_id(const std::string& token) const;  // vocabulary or added token
  // The BOS the post-processor puts first (TemplateProcessing's first special
  // token), when it has one.
  std::optional<int64_t> bos_id() const;
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hyft::tokenizer
