// The hybrid sliding-window + global attention rule (docs/ARCHITECTURE.md,
// "Hybrid attention"). Within one document with positions t = 0..T-1,
// G = { t : t mod s = 0 }, s = round(1/r), and query i may attend key j exactly when
//     j <= i  and  (W = 0  or  i - j < W  or  j in G  or  i in G).
// Here: the rule, the mask a batch needs (described by the rule and the layout,
// with a dense tensor for the backends that want one), and two implementations:
// the explicit-mask reference (slow, obviously correct: the oracle of the tests)
// and at::scaled_dot_product_attention, which uses is_causal (the GPU's fused
// kernels) whenever the mask is plain causal. attention/backend.h chooses between
// them (and any later kernel) per model.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>

namespace hyft::attention {

struct HybridSettings {
  int64_t window_size = 0;   // W; 0 = unlimited (full causal attention)
  double global_ratio = 0.0;  // r in [0, 1); 0 = no global tokens

  // s = round(1/r), halves rounded up; 0 when r = 0.
  int64_t global_stride() const;
  // True when every query sees every earlier key for sequences of length T.
  bool is_full_causal(int64_t T) const { return window_size == 0 || window_size >= T; }
};

// Checks W >= 0 and 0 <= r < 1; `source` names the flag or key in the error.
void validate(const HybridSettings& s, const char* source);

// The rule for one (query position i, key position j) of one document.
bool may_attend(const HybridSettings& s, int64_t i, int64_t j);

// Where each token sits. position_ids (B, T) int64 restart at 0 for each document;
// document_ids (B, T) int64 separates the documents packed into one row (undefined:
// one document per row). Padding needs no document: it sits after the real tokens.
struct Layout {
  at::Tensor position_ids;
  at::Tensor document_ids;
};

// The attention a batch needs, shared by every layer: plain causal (no tensor;
// SDPA's is_causal), or a boolean mask (B, 1, Tq, Tk), true = may attend. With
// causal false and no mask every query sees every key (one new token over a cache).
// Besides the dense form it keeps what the mask was made from, so a backend that
// applies the rule itself (document ids, the window) needs no dense tensor.
struct FastAttentionPlan;  // what the flash path derives once per batch (flash_attention.cpp)
struct AttentionMask {
  bool causal = true;
  at::Tensor allowed;    // the dense form, when the rule is not plain causal and the backend asked
  HybridSettings rule;   // the rule
  Layout layout;         // queries' positions and documents (full forward passes)
  int64_t q_start = 0;   // cached generation: keys before the first query
  // Shared by every layer of one forward pass (and its recomputation): filled by the
  // first layer that needs it.
  mutable std::shared_ptr<FastAttentionPlan> plan;
  mutable at::Tensor lazy_allowed;  // the dense form built on demand by a fallback
};

// Reference: loops over every (b, i, j) calling may_attend. For tests and tiny T.
at::Tensor reference_mask(const HybridSettings& s, const Layout& layout);
// Fast: the same mask from tensor ops on the layout's device.
at::Tensor hybrid_mask(const HybridSettings& s, const Layout& layout);
// What the model uses: causal when the rule reduces to causal, else the rule and
// layout, with hybrid_mask filled in when `dense`.
AttentionMask make_attention_mask(const HybridSettings& s, const Layout& layout, bool dense = true);

// Queries at positions q_start .. q_start+Tq-1 over keys 0 .. q_start+Tq-1 of one
// sequence (generation with a KV cache): no mask when every query sees every key.
AttentionMask make_cached_attention_mask(const HybridSettings& s, int64_t q_start, int64_t Tq,
                                        const at::Device& device, bool dense = true);

// One query per row at positions (B,) over keys 0..keys-1 of the row's own
// sequence (batched decoding over a slotted cache): the dense (B, 1, 1, keys) form.
AttentionMask make_slot_attention_mask(const HybridSettings& s, const at::Tensor& positions, int64_t keys);

// Attention over q (B, H, T, Dh), k and v (B, Hkv, T, Dh), H a multiple of Hkv,
// scaled by 1/sqrt(Dh). Returns (B, H, T, Dh) in q's dtype.
//  reference: repeats k/v per group, q k^T, masked, softmax in float32, times v.
at::Tensor attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const AttentionMask& mask);
//  fast: at::scaled_dot_product_attention (is_causal, or the boolean mask).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionMask& mask);

}  // namespace hyft::attention
