// The text-to-text steps of a tokenizer.json around its model, for BpeTokenizer:
//   normalizers  Prepend, Replace (a String pattern), NFC, NFD, NFKC, NFKD (through ICU,
//                when hyft is built with it), Sequence; and the same steps
//                as the Metaspace pre-tokenizer uses them (spaces to "▁", a "▁"
//                prepended always or at the input's start only, unless already there);
//   decoders     ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence.
// Normalizing keeps an alignment (where in the original text each byte came from),
// so token offsets, and with them the loss mask, stay in the user's text.
// Anything else is refused by name.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

namespace hyft::tokenizer {

// A string with, for each of its bytes, the offset in the original text where that
// byte's source ends (inserted bytes end where the text before them ends).
struct AlignedText {
  std::string s;
  std::vector<size_t> end;
  size_t start = 0;  // where the text begins in the original

  static AlignedText of(const std::string& text, size_t start);
  AlignedText slice(size_t b, size_t e) const;
  // The original offset where s[0, e) ends.
  size_t original_end(size_t e) const { return e == 0 ? start : end[e - 1]; }
};

struct NormalizerStep {
  enum class Kind { Prepend, Replace, Unicode } kind;
  std::string pattern, text;           // Replace: pattern -> text; Prepend: text; Unicode: NFC, NFD, NFKC or NFKD
  bool only_at_input_start = false;    // Prepend: only when the text starts the input (Metaspace "first")
  bool unless_already_there = false;   // Prepend: not when the text already starts with it (Metaspace)
};

// tokenizer.json's "normalizer" into `out` (null adds nothing); `where` names it.
void read_normalizer(const nlohmann::json& n, const std::string& where, std::vector<NormalizerStep>& out);
// The Metaspace pre-tokenizer's replace and prepend as steps; whether it splits is
// the caller's (a split on the replacement, merged with the next piece).
void metaspace_steps(const nlohmann::json& p, const std::string& where, std::vector<NormalizerStep>& out);
AlignedText normalize(const std::vector<NormalizerStep>& steps, AlignedText text);

struct DecoderStep {
  enum class Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace } kind;
  std::string pattern = {}, content = {};  // Replace; Strip's content; Metaspace's replacement
  size_t start = 0, stop = 0;    // Strip
  bool first_space = false;      // Metaspace: drop the first token's leading space
};

void read_decoder(const nlohmann::json& d, const std::string& where, std::vector<DecoderStep>& out);
// Tokens -> text through the steps; `byte_level` maps a token of byte-level
// characters to its bytes. After ByteLevel, invalid UTF-8 becomes U+FFFD, one per
// maximal invalid subsequence; in ByteFallback, one per byte of an invalid run
// (both as the tokenizers package).
std::string run_decoders(const std::vector<DecoderStep>& steps, std::vector<std::string> tokens,
                         const std::function<std::string(const std::string&)>& byte_level);

}  // namespace hyft::tokenizer
