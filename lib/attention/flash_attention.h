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
//    B and C are computed in query chunks with bf16 inputs and float32 scores.
// Memory per layer is O(T) for A and O(T |G| / chunks) for B and C; no (T, T) tensor.
// The slow reference (attention_reference with the dense mask) stays the oracle;
// scripts/gpu_check.sh compares outputs and gradients with it.
#pragma once

#include "attention/hybrid_attention.h"

namespace hyft::attention {

// Whether fast_attention computes this call: q on CUDA in bf16 or fp16, head dim a
// multiple of 8 up to 256, a full forward pass (positions and documents known).
bool fast_attention_supports(const at::Tensor& q, const AttentionMask& mask);

// q (B, H, T, Dh), k and v (B, Hkv, T, Dh), H a multiple of Hkv -> (B, H, T, Dh),
// the rule and layout of `mask` (documents from layout.document_ids), scaled by
// 1/sqrt(Dh). Differentiable in q, k and v.
at::Tensor fast_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask);

}  // namespace hyft::attention
