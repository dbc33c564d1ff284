// The fused operations of the decoder layer and the LM loss, each an autograd
// function with a reference: the ATen expression it replaces.
//   swiglu(gate, up)            silu(gate) * up                     (MLP activation)
//   swiglu_packed(y)            the same of y = [gate | up]         (fused gate/up output)
//   rotary(x, cos, sin)         x * cos + rotate_half(x) * sin      (RoPE on q and k)
//   cross_entropy_rows_(...)    per-row loss, logits -> gradient     (LM head chunks)
// and, for inference only (no autograd; the model takes them when grad mode is off):
//   rms_norm_inference          at::rms_norm                         (the layers' norms)
//   add_rms_norm_inference      h = x + d, at::rms_norm(h)           (residual + norm)
//   argmax_rows                 at::argmax(x, 1)                     (greedy decoding's choice)
//   slot_cache_write_           index_put_ of a step's k and v       (serving's cache)
//   rotary_slot_write_          rotary on q and k, then the cache write (a decoding step)
//   slot_attention              SDPA over the slots, dense rule mask (serving's attention)
//   linear_inference            at::linear of one row (a decoding stream's dense projections)
//   linear_swiglu_inference     swiglu_packed(at::linear(x, [W_gate; W_up])) of one row
//   linear_rotary_slot_write    rotary_slot_write_ of at::linear(x, [W_q; W_k; W_v]), one row
//   linear_add_residual         residual + at::linear(x, W), one row
// On CUDA, in a build with hyft's kernels (kernels/*.cu), the fused kernels run; on
// the CPU, in a build without them, or with HYFT_FUSED_KERNELS=0 in the
// environment (A/B timing, bisecting), the references run. Shapes: B batch,
// T tokens, H heads, Dh head dim, F MLP width, V vocabulary.
#pragma once

#include "attention/hybrid_attention.h"

#include <ATen/core/Tensor.h>

#include <utility>

namespace hyft::kernels {

// Whether this build has the CUDA kernels at all.
bool built_with_cuda_kernels();
// Whether the fused kernels run for tensors like `x`: a CUDA tensor, a build with
// them, HYFT_FUSED_KERNELS not "0".
bool fused_kernels_on(const at::Tensor& x);
// Whether a decoding step's GEMVs may end in the work after them (SwiGLU, RoPE and
// the cache write, the residual add and the norm): HYFT_GEMV_EPILOGUES not "0" (A/B).
bool gemv_epilogues_on();

// gate, up (..., F) -> silu(gate) * up (..., F). On the CUDA path the backward pass
// writes the gradients over the saved gate and up (as Liger does): pass tensors
// nothing else reads afterwards (the MLP's projection outputs).
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);
at::Tensor swiglu_reference(const at::Tensor& gate, const at::Tensor& up);
// y (..., 2F) = [gate | up] (the fused gate/up projection's output) -> (..., F).
// Its backward pass writes the gradient over y (pass a y nothing else reads).
at::Tensor swiglu_packed(const at::Tensor& y);
at::Tensor swiglu_packed_reference(const at::Tensor& y);

// x (B, T, H, Dh), cos/sin (B, T, Dh) -> (B, T, H, Dh), the rotate-half RoPE.
at::Tensor rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
at::Tensor rotary_reference(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// logits (n, V) float32/bf16/fp16, labels (n,) int64 in [0, V) -> loss (n,) float32,
// logsumexp(row) - row[label]; the rows of `logits` become softmax(row) - onehot(label).
// No autograd: the fused linear cross-entropy calls it on chunks it owns.
at::Tensor cross_entropy_rows_(at::Tensor& logits, const at::Tensor& labels);
at::Tensor cross_entropy_rows_reference_(at::Tensor& logits, const at::Tensor& labels);

// x (..., D), weight (D,) -> at::rms_norm(x, {D}, weight, eps). The kernel runs
// only where nothing needs a gradient (grad mode off); otherwise the reference.
at::Tensor rms_norm_inference(const at::Tensor& x, const at::Tensor& weight, double eps);
// x, d (..., D) -> {h = x + d, rms_norm(h)}: one pass where the kernel runs.
std::pair<at::Tensor, at::Tensor> add_rms_norm_inference(const at::Tensor& x, const at::Tensor& d,
                                                         const at::Tensor& weight, double eps);

// x (n, V) -> (n,) int64, at::argmax(x, 1) exactly (NaN beats every number, the
// first of equals wins): one block a row on CUDA, the reference elsewhere.
at::Tensor argmax_rows(const at::Tensor& x);

// k, v (B, E) -> k_cache / v_cache (S, Tmax, E) at [b, positions[b]] for each row
// b < B, positions (B,) int64 on the caches' device. Reference: index_put_.
void slot_cache_write_(at::Tensor& k_cache, at::Tensor& v_cache, const at::Tensor& k, const at::Tensor& v,
                       const at::Tensor& positions);
void slot_cache_write_reference_(at::Tensor& k_cache, at::Tensor& v_cache, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& positions);

// A decoding step's RoPE and cache write at once: q (B, 1, H, Dh), k and v (B, 1, Hkv, Dh)
// (each row's heads contiguous; rows may be strided), cos/sin (B, 1, Dh) -> rotary(q)
// (B, 1, H, Dh), with rotary(k) and v written at [b, positions[b]] of k_cache / v_cache
// (S, Tmax, Hkv, Dh). One kernel where it runs, else rotary and slot_cache_write_;
// the reference is their references.
at::Tensor rotary_slot_write_(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cos,
                              const at::Tensor& sin, at::Tensor& k_cache, at::Tensor& v_cache,
                              const at::Tensor& positions);
at::Tensor rotary_slot_write_reference_(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& cos, const at::Tensor& sin, at::Tensor& k_cache,
                                        at::Tensor& v_cache, const at::Tensor& positions);

// Where a decoding step's q, k and v go: its RoPE tables, the slotted caches (written
// in place through these handles) and each row's position.
struct SlotWrite {
  at::Tensor cos, sin;          // (B, 1, Dh)
  at::Tensor k_cache, v_cache;  // (S, Tmax, Hkv, Dh)
  at::Tensor positions;         // (B,) long, on the caches' device
  int64_t heads = 0, kv_heads = 0;
};

// The RMSNorm a decoding stream's q/k/v or gate/up GEMV may apply to its input
// first (x then the residual stream h before the norm): each block of the GEMV
// computes rms_norm_inference(h, weight, eps) into its shared memory, bit for bit as
// the norm's kernel does, and reads it from there: one kernel less a layer (dense,
// INT8 W; the GEMVs decline INT4 and NF4 with a norm). weight undefined: x as it is.
struct InputNorm {
  at::Tensor weight;  // (in,)
  double eps = 0.0;
};

namespace cuda {
struct RotaryDecodeArgs;
struct RowNorm;
}
// `n` as the CUDA kernels take it for x's dtype and device (true), or false where they
// do not take it (then the caller applies the norm itself).
bool row_norm_args(const at::Tensor& x, const InputNorm& n, cuda::RowNorm& a);
// `t` as the CUDA kernels take it (cuda_launch.h; q, k, v and their strides left to
// the caller) for B rows of `x`'s dtype and device, with q's output allocated
// (B, 1, heads, Dh) and returned; undefined where the kernels do not take it (not the
// inference path, dtypes, layouts). For rotary_slot_write_ and the q/k/v GEMVs that
// end in it (linear_rotary_slot_write; quant's for quantized W).
at::Tensor rotary_slot_args(const at::Tensor& x, int64_t B, const SlotWrite& t, cuda::RotaryDecodeArgs& a);

// x (1, 1, D) one row, W = [W_q; W_k; W_v] dense -> q rotated (1, 1, H, Dh), with k
// rotated and v written into slot 0 of the caches at positions[0]: one kernel (the
// single-row GEMV ending in rotary_slot_write_'s work, starting with `norm` when its
// weight is given); undefined where it does not apply. Reference: (the norm,)
// linear_inference, then rotary_slot_write_ on the column slices.
at::Tensor linear_rotary_slot_write(const at::Tensor& x, const at::Tensor& weight, const SlotWrite& t,
                                    const InputNorm& norm = {});

// A decoding step's attention over the serving engine's slotted cache: q (B, 1, H, Dh),
// row b's query at positions[b] (B,) -> (B, 1, H, Dh), over the keys 0..positions[b]
// of slot b in k_cache / v_cache (S, Tmax, Hkv, Dh) that mask.rule allows; every
// position < keys <= Tmax. The kernel (kernels/slot_attention.cu: Dh 64 or 128, H/Hkv
// 1, 4 or 8, grad mode off, a small step: B * H * keys <= 16384) reads only those
// keys; otherwise, and as the reference, SDPA over the first `keys` keys with
// make_slot_attention_mask's dense mask, made once a step (kept in mask.lazy_allowed
// for the step's other layers).
at::Tensor slot_attention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                          const at::Tensor& positions, int64_t keys, const attention::AttentionMask& mask);
// The kernel alone, whatever the size; undefined where it does not apply (for the GPU check).
at::Tensor slot_attention_kernel(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                                 const at::Tensor& positions, int64_t keys, const attention::HybridSettings& rule);
at::Tensor slot_attention_reference(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                                    const at::Tensor& positions, int64_t keys, const attention::HybridSettings& rule);

// y (..., out) = x (..., in) W^T + bias, W (out, in). When x is a single row (one
// decoding stream) on the inference path, the single-row GEMV kernel
// (kernels/quantized_gemv.cu's dense_gemv: W loaded ahead of the kernel before it,
// float32 sums); otherwise, and as the reference, at::linear. HYFT_DENSE_GEMV=0
// leaves every row to at::linear (cuBLAS).
at::Tensor linear_inference(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
// The kernel alone, without bias; undefined where it does not apply (for the GPU check).
at::Tensor linear_inference_kernel(const at::Tensor& x, const at::Tensor& weight);
// x (..., in) one row, W (2F, in) = [W_gate; W_up] -> silu(x W_gate^T) * (x W_up^T)
// (..., F) in one kernel (the single-row GEMV ending in SwiGLU, starting with `norm`
// when its weight is given) on the inference path; undefined where it does not apply
// (the caller then runs the norm, the GEMV and swiglu_packed, its reference).
at::Tensor linear_swiglu_inference(const at::Tensor& x, const at::Tensor& weight, const InputNorm& norm = {});

// x (1, 1, in) one row, W (D, in) dense -> residual + x W^T (1, 1, D) in one kernel
// (the single-row GEMV ending in the add: a decoding stream's o and down projections
// onto the residual stream); undefined where it does not apply. Reference:
// linear_inference, then the add in x's dtype (bit for bit: the same sums).
at::Tensor linear_add_residual(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& residual);
// Whether residual can take the D outputs of x's single-row GEMV onto it (D values,
// contiguous, x's dtype and device): linear_add_residual's and quant's
// quantized_gemv_add_residual's terms.
bool residual_fits(const at::Tensor& residual, const at::Tensor& x, int64_t D);

}  // namespace hyft::kernels
