// The prompt part of a record, for generation and label scoring: everything a
// template puts before the last completion (the assistant's last turn, the Alpaca
// response, the completion), encoded with BOS. Records may leave the completion
// out: {"prompt": ...}, {"instruction": ...}, or messages ending with a user turn.
#pragma once

#include "data/jsonl.h"
#include "data/records.h"
#include "tokenizer/tokenizer.h"

#include <optional>
#include <string>
#include <vector>

namespace hyft::data {

struct PromptRecord {
  std::vector<int64_t> ids;          // BOS + the rendered prompt
  std::string completion;            // the record's completion text ("" when absent)
  std::optional<std::string> label;  // the label field
};

PromptRecord prompt_of(const JsonlLine& line, const RecordOptions& options, const tokenizer::Tokenizer& tok);

}  // namespace hyft::data
