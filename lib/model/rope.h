// Rotary position embedding of Llama (rotate-half form, as transformers computes
// it): inverse frequencies for rope_scaling none/linear/dynamic/llama3, the cos/sin
// tables for given positions, and their application to queries and keys.
#pragma once

#include "model/llama_config.h"

#include <ATen/core/Tensor.h>

#include <utility>

namespace hyft::model {

class RotaryEmbedding {
 public:
  explicit RotaryEmbedding(const LlamaConfig& config);

  // Inverse frequencies (Dh/2,) float32 for sequences of length seq_len. Only
  // "dynamic" depends on seq_len: above max_position_embeddings it raises the base
  // (NTK scaling). transformers caches the largest length seen; hyft computes it
  // per batch from that batch's largest position, which is what a fresh
  // transformers model does on the same batch.
  at::Tensor inv_freq(int64_t seq_len, const at::Device& device) const;

  // cos, sin of shape (B, T, Dh) in `dtype` for position_ids (B, T) int64.
  std::pair<at::Tensor, at::Tensor> cos_sin(const at::Tensor& position_ids,
                                            at::ScalarType dtype) const;

 private:
  LlamaConfig config_;
};

// x * cos + rotate_half(x) * sin, for x (B, H, T, Dh) and cos/sin (B, T, Dh).
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace hyft::model
