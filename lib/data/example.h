// One tokenized training or evaluation example: input_ids and labels of equal
// length, labels aligned with the inputs as in transformers (-100 = no loss).
#pragma once

#include <cstdint>
#include <vector>

namespace hyft::data {

struct Example {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> labels;
};

}  // namespace hyft::data
