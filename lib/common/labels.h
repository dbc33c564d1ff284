// The label convention of causal-LM training, as in transformers: labels are
// aligned with input_ids and kIgnoreIndex marks a position that carries no loss
// (prompts under the default masking, padding, the first token of a packed document).
#pragma once

#include <cstdint>

namespace hyft {

constexpr int64_t kIgnoreIndex = -100;

}  // namespace hyft
