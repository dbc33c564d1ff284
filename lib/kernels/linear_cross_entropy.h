// The LM head and the cross-entropy fused over chunks of tokens (as Liger's
// fused linear cross-entropy): the (N, V) logits never exist whole, only (chunk, V)
// at a time in the compute dtype; each chunk's gradient is produced in the same
// pass (the logits are overwritten by softmax - onehot, kernels::cross_entropy_rows_),
// multiplied into the gradients of the hidden states and, when it trains, of the
// weight, and the backward pass only scales them. Reference: at::linear, then
// at::cross_entropy_loss on float32 logits (model/causal_lm_loss.cpp's unfused path).
// Shapes: N target tokens, D hidden, V vocabulary.
#pragma once

#include <ATen/core/Tensor.h>

namespace hyft::kernels {

// Tokens per chunk when 0 is given: about 256 MiB of bf16 logits.
int64_t default_chunk_tokens(int64_t vocab);

// h (N, D), weight (V, D), labels (N,) int64 in [0, V) -> summed NLL, float32
// scalar, differentiable in h and weight. The matmul runs in autocast's dtype when
// autocast is on for h's device, else in h's dtype.
at::Tensor linear_cross_entropy_sum(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& labels,
                                    int64_t chunk_tokens = 0);

// The same without gradients: the NLL of each token, (N,) float32.
at::Tensor linear_cross_entropy_rows(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& labels,
                                     int64_t chunk_tokens = 0);

}  // namespace hyft::kernels
