// Added tokens (special tokens on top of a tokenizer's vocabulary) are matched in
// the raw text before the tokenizer's model sees it: the leftmost occurrence, the
// longest one at that place. Shared by Tokenizer (tokens added to a SentencePiece or
// BPE vocabulary) and BpeTokenizer (tokenizer.json's own added tokens, which may
// also take the whitespace on their left (lstrip) or right (rstrip), or match only
// as a word of their own (single_word)).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hyft::tokenizer {

struct AddedToken {
  std::string content;
  int64_t id = 0;
  bool lstrip = false, rstrip = false, single_word = false;
};

namespace added_detail {
inline bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
inline bool word(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || (u >= '0' && u <= '9') || (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || u == '_';
}
}  // namespace added_detail

// Walks `text`: on_text(begin, end) for each stretch between added tokens (never
// empty), on_token(id, end) for each added token (with the whitespace it strips), in order.
inline void split_on_added_tokens(const std::string& text, const std::vector<AddedToken>& added,
                                  const std::function<void(size_t, size_t)>& on_text,
                                  const std::function<void(int64_t, size_t)>& on_token) {
  using added_detail::space;
  using added_detail::word;
  size_t at = 0;
  while (at < text.size()) {
    size_t best = std::string::npos, best_len = 0;
    const AddedToken* hit = nullptr;
    for (const auto& t : added) {
      if (t.content.empty()) continue;
      size_t p = text.find(t.content, at);
      while (p != std::string::npos && t.single_word &&
             ((p > 0 && word(text[p - 1])) ||
              (p + t.content.size() < text.size() && word(text[p + t.content.size()]))))
        p = text.find(t.content, p + 1);
      if (p == std::string::npos) continue;
      if (p < best || (p == best && t.content.size() > best_len)) best = p, best_len = t.content.size(), hit = &t;
    }
    if (!hit) break;
    size_t begin = best, end = best + best_len;
    if (hit->lstrip)
      while (begin > at && space(text[begin - 1])) --begin;
    if (hit->rstrip)
      while (end < text.size() && space(text[end])) ++end;
    if (begin > at) on_text(at, begin);
    on_token(hit->id, end);
    at = end;
  }
  if (at < text.size()) on_text(at, text.size());
}

}  // namespace hyft::tokenizer
