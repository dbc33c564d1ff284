// The attention-backend seam: how every layer of a model computes attention,
// chosen once per model (LlamaForCausalLMImpl::attention_backend). A backend gets
// q, k, v and the batch's AttentionMask, which carries the rule and the layout as
// well as the dense mask; a backend that applies the rule itself (document ids for
// packed rows, the window and global tokens) says so with needs_dense_mask() and
// the model then never builds the (B, 1, T, T) tensor. New kernels plug in here
// (docs/ARCHITECTURE.md, "Adding an attention backend").
#pragma once

#include "attention/hybrid_attention.h"

namespace hyft::attention {

class AttentionBackend {
 public:
  virtual ~AttentionBackend() = default;
  virtual const char* name() const = 0;
  // Whether AttentionMask::allowed must be filled when the mask is not plain causal.
  virtual bool needs_dense_mask() const { return true; }
  // q (B, H, Tq, Dh), k and v (B, Hkv, Tk, Dh), H a multiple of Hkv -> (B, H, Tq, Dh).
  virtual at::Tensor forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const AttentionMask& mask) const = 0;
};

// at::scaled_dot_product_attention: is_causal for plain causal masks, else the dense mask.
const AttentionBackend& sdpa_backend();
// The explicit-mask oracle (attention_reference): slow, for tests.
const AttentionBackend& reference_backend();
// flash_attention.h where it applies (CUDA, bf16/fp16, documents or the hybrid
// rule), else SDPA with the dense mask made on first need. No dense mask up front.
const AttentionBackend& flash_backend();
// What a model on `device` uses: flash on CUDA, SDPA elsewhere.
const AttentionBackend& default_backend(const at::Device& device);

}  // namespace hyft::attention
