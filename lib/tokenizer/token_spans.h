// Token ids with, for each, the byte offset in the encoded text where it ends:
// what Tokenizer::encode_spans and BpeTokenizer::encode_with_ends return, so that
// the data pipeline can give each token the loss flag of the text it came from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hyft::tokenizer {

struct TokenSpans {
  std::vector<int64_t> ids;
  std::vector<size_t> ends;
};

}  // namespace hyft::tokenizer
