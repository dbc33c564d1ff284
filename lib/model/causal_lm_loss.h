// The causal language-modelling loss: position t predicts labels[t+1],
// labels aligned with input_ids as in transformers, kIgnoreIndex (-100) masks a position. Only the
// target positions go through lm_head, a chunk at a time, so the full (B, T, V)
// logits are never materialised; logits are upcast to float32 as transformers does.
#pragma once

#include "common/labels.h"
#include "model/llama.h"

namespace hyft::model {

struct TargetNll {
  at::Tensor sum;      // float32 scalar: summed negative log-likelihood (differentiable)
  int64_t count = 0;   // number of target tokens
};

// hidden (B, T, D) from the model, labels (B, T) int64 aligned with the inputs.
TargetNll target_nll(const LlamaForCausalLMImpl& model, const at::Tensor& hidden,
                     const at::Tensor& labels, int64_t chunk_tokens = 4096);

// Per row: summed NLL of each row's targets, (B,) float32 (no gradient needed).
at::Tensor row_nll(const LlamaForCausalLMImpl& model, const at::Tensor& hidden, const at::Tensor& labels);

}  // namespace hyft::model
