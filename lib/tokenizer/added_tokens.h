// Added tokens (special tokens on top of a tokenizer's vocabulary) are matched in
// the raw text before the tokenizer's model sees it: the leftmost occurrence, the
// longest one at that place. Shared by Tokenizer (tokens added to a SentencePiece or
// BPE vocabulary) and BpeTokenizer (tokenizer.json's own added tokens).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace hyft::tokenizer {

// Walks `text`: on_text(begin, end) for each stretch between added tokens (never
// empty), on_token(id, end) for each added token, in order.
inline void split_on_added_tokens(const std::string& text, const std::vector<std::pair<std::string, int64_t>>& added,
                                  const std::function<void(size_t, size_t)>& on_text,
                                  const std::function<void(int64_t, size_t)>& on_token) {
  size_t at = 0;
  while (at < text.size()) {
    size_t best = std::string::npos, best_len = 0;
    int64_t best_id = -1;
    for (const auto& [content, id] : added) {
      if (content.empty()) continue;
      const size_t p = text.find(content, at);
      if (p == std::string::npos) continue;
      if (p < best || (p == best && content.size() > best_len)) best = p, best_len = content.size(), best_id = id;
    }
    if (best == std::string::npos) break;
    if (best > at) on_text(at, best);
    on_token(best_id, best + best_len);
    at = best + best_len;
  }
  if (at < text.size()) on_text(at, text.size());
}

}  // namespace hyft::tokenizer
