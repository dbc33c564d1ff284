// A frozen projection weight kept quantized (NF4 or INT8, nf4.h) and used through
// y = x W^T + b with W dequantized on the fly: in the forward pass, and again in
// the backward pass for the input's gradient (nothing of W (out, in) is saved for
// backward, as bitsandbytes' 4-bit matmul does), so only the codes stay in memory.
// The dequantization is the ATen reference of nf4.h.
#pragma once

#include "quant/nf4.h"

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

namespace hyft::quant {

enum class Format { None, Nf4, Int8 };
Format parse_format(const std::string& text, const char* flag);  // "none" | "nf4" | "int8"
const char* format_name(Format f);

struct QuantizedWeight {
  Format format = Format::None;
  Nf4Weight nf4;
  Int8Weight int8;
  at::ScalarType dtype = at::kBFloat16;  // the weight's dtype before quantization (what it dequantizes to)

  static QuantizedWeight from(const at::Tensor& w, Format format);
  at::Tensor dequantize() const;  // (out, in) in dtype
  int64_t bytes() const;          // what it keeps in memory
};

// x (..., in) -> (..., out); differentiable in x (and bias), never in W.
at::Tensor quantized_linear(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias);

}  // namespace hyft::quant
