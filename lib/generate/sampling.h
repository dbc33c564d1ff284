// Choosing the next token: the repetition penalty, temperature, top-k and
// top-p as transformers' logits processors apply them, in that order; greedy at
// temperature 0; reproducible draws from a seeded generator.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <vector>

namespace hyft::generate {

struct SamplingSettings {
  double temperature = 0.7;  // 0: greedy
  double top_p = 0.9;        // 1: off
  int64_t top_k = 0;         // 0: off
  double repetition_penalty = 1.2;  // 1: off
};

// logits (V,) float32 for the next token, `history` the ids so far (prompt and
// generated). Returns the processed logits: penalised, divided by temperature,
// with the tokens outside top-k / top-p set to -inf.
at::Tensor process_logits(const at::Tensor& logits, const std::vector<int64_t>& history,
                          const SamplingSettings& settings);

// The next token: argmax at temperature 0, else a draw from softmax(processed).
int64_t next_token(const at::Tensor& logits, const std::vector<int64_t>& history, const SamplingSettings& settings,
                   at::Generator& generator);

}  // namespace hyft::generate
