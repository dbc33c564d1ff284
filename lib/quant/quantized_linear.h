// A frozen projection weight kept quantized (NF4, optionally with double-quantized
// scales, INT8 or INT4; formats.h) and used
// through y = x W^T + b with W dequantized on the fly: in the forward pass, and again
// in the backward pass for the input's gradient (nothing of W (out, in) is saved for
// backward, as bitsandbytes' 4-bit matmul does), so only the codes stay in memory.
// On CUDA (hyft built with its kernels, HYFT_FUSED_KERNELS not 0) the dequantization
// is kernels/dequantize.cu, and a forward pass over at most 8 rows (a decoding step)
// is one dequantizing GEMV (kernels/quantized_gemv.cu) that never makes W; elsewhere,
// and as the reference, the ATen code of formats.h.
#pragma once

#include "kernels/fused_ops.h"
#include "quant/formats.h"

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace hyft::quant {

// nf4-dq: NF4 with its absmax values double-quantized (bitsandbytes' default for
// Linear4bit, QLoRA's double quantization): 8.25 bits of scale a block instead of 32.
enum class Format { None, Nf4, Nf4DoubleQuant, Int8, Int4 };
Format parse_format(const std::string& text, const char* flag);  // "none" | "nf4" | "nf4-dq" | "int8" | "int4"
const char* format_name(Format f);

struct QuantizedWeight {
  Format format = Format::None;
  Nf4Weight nf4;  // nf4 and nf4-dq
  Int8Weight int8;
  Int4Weight int4;
  at::ScalarType dtype = at::kBFloat16;  // the weight's dtype before quantization (what it dequantizes to)

  static QuantizedWeight from(const at::Tensor& w, Format format);
  at::Tensor dequantize() const;            // (out, in) in dtype: the CUDA kernel where it runs, else the reference
  at::Tensor dequantize_reference() const;  // the ATen code of formats.h
  int64_t rows() const;
  int64_t cols() const;
  int64_t bytes() const;  // what it keeps in memory
  bool is_nf4() const { return format == Format::Nf4 || format == Format::Nf4DoubleQuant; }
};

// Weights stacked by rows, for projections of one input run as one (model/
// fused_projections.h). Exact when each part's scale blocks lie within it: INT8
// always, NF4 and INT4 when rows * cols is a multiple of the block; never nf4-dq,
// whose second-level blocks and offset span the whole tensor.
bool can_stack(const std::vector<const QuantizedWeight*>& parts);
// The parts' codes and scales concatenated: (sum of rows, cols).
QuantizedWeight stack_rows(const std::vector<const QuantizedWeight*>& parts);
// Rows [first, first + count) of a stackable weight, as views into its tensors.
QuantizedWeight row_slice(const QuantizedWeight& w, int64_t first, int64_t count);

// x (..., in) -> (..., out); differentiable in x (and bias), never in W.
at::Tensor quantized_linear(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias);

// The same product through the dequantizing GEMV kernel, x (m, in) with m <= kGemvRows, in
// w.dtype; an undefined tensor where the kernel does not apply (no CUDA kernels, the
// CPU, a layout it does not take). For the kernel check and the forward pass above.
at::Tensor quantized_gemv(const at::Tensor& x, const QuantizedWeight& w);
constexpr int64_t kGemvRows = 8;  // kernels::cuda::kGemvMaxRows

// x (..., in) one row, w = a gate and an up projection stacked (2F, in) ->
// silu(x W_gate^T) * (x W_up^T) (..., F) in one kernel, without autograd, starting
// with `norm` when its weight is given (kernels::InputNorm); undefined where the kernel
// does not apply (the caller runs the norm, quantized_linear and
// kernels::swiglu_packed, its reference).
at::Tensor quantized_gemv_swiglu(const at::Tensor& x, const QuantizedWeight& w, const kernels::InputNorm& norm = {});

// x (1, 1, in) one row, w = q, k and v projections stacked -> q rotated (1, 1, H, Dh),
// k rotated and v written into the slot cache (kernels::linear_rotary_slot_write for
// quantized W), without autograd; undefined where the kernel does not apply.
at::Tensor quantized_gemv_rotary_slot_write(const at::Tensor& x, const QuantizedWeight& w,
                                            const kernels::SlotWrite& t, const kernels::InputNorm& norm = {});

// x (1, 1, in) one row -> residual + x W^T in one kernel (kernels::linear_add_residual
// for quantized W), without autograd; undefined where the kernel does not apply.
at::Tensor quantized_gemv_add_residual(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& residual);

}  // namespace hyft::quant
