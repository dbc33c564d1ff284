// The causal language-modelling loss: position t predicts labels[t+1],
// labels aligned with input_ids as in transformers, kIgnoreIndex (-100) masks a position. Only the
// target positions go through lm_head. When lm_head is a plain matrix (or tied to
// the embedding), the head and the loss run fused a chunk of tokens at a time
// (kernels/linear_cross_entropy.h): the (N, V) logits never exist whole and the
// gradients come out of the same pass. With an adapter on lm_head, the head's
// slot runs a chunk at a time and the loss follows on float32 logits (the unfused
// path, which is also the fused path's reference).
#pragma once

#include "common/labels.h"
#include "model/llama.h"

namespace hyft::model {

struct TargetNll {
  at::Tensor sum;      // float32 scalar: summed negative log-likelihood (differentiable)
  int64_t count = 0;   // number of target tokens
};

// hidden (B, T, D) from the model, labels (B, T) int64 aligned with the inputs.
// chunk_tokens 0: the fused path's default (about 256 MiB of logits per chunk).
TargetNll target_nll(const LlamaForCausalLMImpl& model, const at::Tensor& hidden,
                     const at::Tensor& labels, int64_t chunk_tokens = 0);

// The unfused reference: h (N, D) target positions, y (N,) -> summed NLL through
// model.logits on chunks of chunk_tokens and cross-entropy on float32 logits.
at::Tensor target_nll_unfused(const LlamaForCausalLMImpl& model, const at::Tensor& h, const at::Tensor& y,
                              int64_t chunk_tokens = 4096);

// Per row: summed NLL of each row's targets, (B,) float32 (no gradient needed).
at::Tensor row_nll(const LlamaForCausalLMImpl& model, const at::Tensor& hidden, const at::Tensor& labels);

}  // namespace hyft::model
