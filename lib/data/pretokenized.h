// Pre-tokenized JSONL records: {"input_ids": [...], "labels": [...]},
// labels optional (absent: every position is a target, as labels=input_ids).
#pragma once

#include "data/example.h"
#include "data/jsonl.h"

namespace hyft::data {

// Parses one record; ids must lie in [0, vocab_size), labels in range or kIgnoreIndex (-100).
Example parse_pretokenized(const JsonlLine& line, int64_t vocab_size);

}  // namespace hyft::data
