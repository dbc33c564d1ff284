// One tokenized training or evaluation example: input_ids and labels of equal
// length, labels aligned with the inputs as in transformers (kIgnoreIndex = no loss),
// with what sampling needs (weight, label) and where it came from (line).
#pragma once

#include "common/labels.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hyft::data {

struct Example {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> labels;
  double weight = 1.0;               // the record's `weight`, for weighted sampling
  std::optional<std::string> label;  // the record's label field, for balanced sampling
  int64_t line = 0;                  // 1-based line in its JSONL file

  // Positions that carry a loss: labels[t] != kIgnoreIndex for t >= 1 (position t-1 predicts t).
  int64_t target_count() const {
    int64_t n = 0;
    for (size_t t = 1; t < labels.size(); ++t) n += labels[t] != kIgnoreIndex;
    return n;
  }
};

}  // namespace hyft::data
