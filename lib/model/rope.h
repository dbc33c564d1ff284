// Rotary position embedding of Llama (rotate-half form, as transformers computes
// it): inverse frequencies for rope_scaling none/linear/dynamic/llama3, the cos/sin
// tables for given positions. Applying them to queries and keys is
// kernels::rotary (kernels/fused_ops.h).
#pragma once

#include "model/llama_config.h"

#include <ATen/core/Tensor.h>

#include <utility>

namespace hyft::model {

class RotaryEmbedding {
 public:
  explicit RotaryEmbedding(const LlamaConfig& config);

  // Inverse frequencies float32, (Dh/2,) from rope_theta and rope_scaling.
  at::Tensor inv_freq(const at::Device& device) const;
  // "dynamic" only: per-row inverse frequencies (B, Dh/2) for rows whose longest
  // sequence has seq_lens[b] tokens; above max_position_embeddings the base rises
  // (NTK scaling). transformers caches the largest length it has seen; hyft uses
  // each row's own length, which is what a fresh transformers model computes for
  // that sequence alone.
  at::Tensor dynamic_inv_freq(const at::Tensor& seq_lens) const;

  // cos, sin of shape (B, T, Dh) in `dtype` for position_ids (B, T) int64. Padding
  // should carry position 0 so that it does not lengthen a row under "dynamic".
  std::pair<at::Tensor, at::Tensor> cos_sin(const at::Tensor& position_ids,
                                            at::ScalarType dtype) const;

 private:
  LlamaConfig config_;
};

}  // namespace hyft::model
