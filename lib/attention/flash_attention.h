// Attention on CUDA without a T x T mask (docs/ARCHITECTURE.md, "Hybrid attention").
//
//  - Documents (packed rows) are the variable-length sequences of the flash
//    kernels (at::_flash_attention_forward/_backward with cu_seqlens): no token
//    attends across a document, and padding costs nothing extra.
//  - The window W is their band (window_size_left = W - 1).
//  - The global tokens of the hybrid rule (every s-th position of a document) split
//    each query's keys into three disjoint parts:
//      A: the band, j in (i - W, i]                        (the call above)
//      B: global keys outside the band, j in G, j <= i - W
//      C: for a global query i in G, every key j <= i
//    B and C are causal flash problems too once their queries and keys are
//    gathered by phase (flash_attention.cpp shows how); C's s partial results per
//    global query, and A with B, merge exactly by their log-sum-exp, and global
//    queries take C alone. The backward of each part runs with the merged output and
//    log-sum-exp (as ring attention does), so the gradients are those of the whole
//    softmax. Gathered copies of keys add up to about T rows per part: O(T) memory.
// No (T, T) tensor anywhere. The slow reference (attention_reference with the dense
// mask) stays the oracle; test/gpu/attention_check.cpp compares outputs and
// gradients with it (bench/attention.sh runs it on the GPU machine).
#pragma once

#include "attention/hybrid_attention.h"

namespace hyft::attention {

// Rows shorter than this that have global tokens go to SDPA with the dense mask,
// which is faster there (H200, H16 D128 W512 r0.1, fwd+bwd: T=4096 dense 1.65 ms,
// this path 2.20 ms; T=16384 25.2 against 9.4 ms; BENCHMARKS.md).
constexpr int64_t kGlobalsFromTokens = 6144;

// Whether fast_attention computes this call: q on CUDA in bf16 or fp16, head dim a
// multiple of 8 up to 256, a full forward pass (positions and documents known), and
// rows of kGlobalsFromTokens or more when the rule has global tokens.
bool fast_attention_supports(const at::Tensor& q, const AttentionMask& mask);

// q (B, H, T, Dh), k and v (B, Hkv, T, Dh), H a multiple of Hkv -> (B, H, T, Dh),
// the rule and layout of `mask` (documents from layout.document_ids), scaled by
// 1/sqrt(Dh). Differentiable in q, k and v.
at::Tensor fast_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask);

}  // namespace hyft::attention
