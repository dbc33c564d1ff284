// Attention on CUDA without a T x T mask (docs/ARCHITECTURE.md, "Hybrid attention").
//
//  - Documents (packed rows) are the variable-length sequences of the flash
//    kernels (at::_flash_attention_forward/_backward with cu_seqlens): no token
//    attends across a document, and padding costs nothing extra.
//  - The window W is their band (window_size_left = W - 1).
//  - The global tokens of the hybrid rule (every s-th position of a document) are
//    a small gathered problem: each query's keys split into three disjoint parts,
//      A: the band, j in (i - W, i]                       (flash, varlen + window)
//      B: global keys outside the band, j in G, j <= i - W (gathered, T x |G|)
//      C: for a global query i in G, every key j <= i      (gathered, |G| x T)
//    A and B merge exactly by their log-sum-exp; global queries take C alone. The
//    backward of each part runs with the merged output and log-sum-exp (as ring
//    attention does), so the gradients are those of the whole softmax.
//    B and C run through the memory-efficient kernel
//    (at::_scaled_dot_product_efficient_attention) with an additive bias of
//    (T, |G|) and (|G|, T) in the input dtype, shared by the heads.
// Memory per layer is O(T) for A and O(T |G|) for B's and C's biases; no (T, T) tensor.
// The slow reference (attention_reference with the dense mask) stays the oracle;
// scripts/gpu_check.sh compares outputs and gradients with it.
#pragma once

#include "attention/hybrid_attention.h"

namespace hyft::attention {

// Rows shorter than this with global tokens go to SDPA with the dense mask, which
// is faster there (H200, H16 D128 W512 r0.1, fwd+bwd: T=4096 dense 1.9 ms, this
// path 4.6 ms; T=16384 28.5 against 25.5; T=65536 478 against 258).
constexpr int64_t kGlobalsFromTokens = 12288;

// Whether fast_attention computes this call: q on CUDA in bf16 or fp16, head dim a
// multiple of 8 up to 256, a full forward pass (positions and documents known),
// and, with global tokens, rows of kGlobalsFromTokens or more.
bool fast_attention_supports(const at::Tensor& q, const AttentionMask& mask);

// q (B, H, T, Dh), k and v (B, Hkv, T, Dh), H a multiple of Hkv -> (B, H, T, Dh),
// the rule and layout of `mask` (documents from layout.document_ids), scaled by
// 1/sqrt(Dh). Differentiable in q, k and v.
at::Tensor fast_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask);

}  // namespace hyft::attention
