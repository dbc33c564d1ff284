// Choosing the next token: the repetition penalty, temperature, top-k and
// top-p as transformers' logits processors apply them, in that order; greedy at
// temperature 0; reproducible draws from a seeded generator. process_logits is the
// one-row reference; the batch versions run where the logits are.
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

// The same for a batch of rows at once, where the logits are (the GPU in serving):
// logits (n, V), each row with its history and settings. Row i equals
// process_logits(logits[i], *histories[i], settings[i]).
at::Tensor process_logits_batch(const at::Tensor& logits, const std::vector<const std::vector<int64_t>*>& histories,
                                const std::vector<SamplingSettings>& settings);

// The next token of each row: argmax at temperature 0, else a draw from
// softmax(processed) by the inverse of its cumulative sum at one uniform number from
// the row's generator (CPU), so a row's token does not depend on the other rows.
// Only the n ids cross to the host.
std::vector<int64_t> next_tokens(const at::Tensor& logits, const std::vector<const std::vector<int64_t>*>& histories,
                                 const std::vector<SamplingSettings>& settings,
                                 const std::vector<at::Generator*>& generators);
// One row: next_tokens of logits (V,).
int64_t next_token(const at::Tensor& logits, const std::vector<int64_t>& history, const SamplingSettings& settings,
                   at::Generator& generator);

}  // namespace hyft::generate
