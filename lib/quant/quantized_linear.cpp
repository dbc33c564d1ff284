#include "quant/quantized_linear.h"

#include "common/error.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

namespace hyft::quant {

Format parse_format(const std::string& text, const char* flag) {
  if (text == "none" || text.empty()) return Format::None;
  if (text == "nf4") return Format::Nf4;
  if (text == "int8") return Format::Int8;
  fail(flag, ": '", text, "' is not a quantization; use nf4, int8 or none");
}

const char* format_name(Format f) { return f == Format::Nf4 ? "nf4" : f == Format::Int8 ? "int8" : "none"; }

QuantizedWeight QuantizedWeight::from(const at::Tensor& w, Format format) {
  QuantizedWeight q;
  q.format = format;
  q.dtype = w.scalar_type();
  if (format == Format::Nf4) q.nf4 = quantize_nf4(w);
  else if (format == Format::Int8) q.int8 = quantize_int8(w);
  return q;
}

at::Tensor QuantizedWeight::dequantize() const {
  return format == Format::Nf4 ? dequantize_nf4(nf4, dtype) : dequantize_int8(int8, dtype);
}

int64_t QuantizedWeight::bytes() const {
  return format == Format::Nf4 ? nf4.packed.numel() + nf4.absmax.numel() * 4
                               : int8.q.numel() + int8.absmax.numel() * 4;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The weight is reached through the context (the projection that owns it outlives
// the backward pass); only x's gradient flows.
struct QuantizedLinearFunction : torch::autograd::Function<QuantizedLinearFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const QuantizedWeight* w) {
    ctx->saved_data["w"] = reinterpret_cast<int64_t>(w);
    const at::Tensor W = w->dequantize();
    return at::linear(x.to(W.scalar_type()), W);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto* w = reinterpret_cast<const QuantizedWeight*>(ctx->saved_data["w"].toInt());
    const at::Tensor g = grad[0];                                            // (..., out)
    return {at::matmul(g, w->dequantize().to(g.scalar_type())), at::Tensor()};  // (..., in)
  }
};

}  // namespace

at::Tensor quantized_linear(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias) {
  const at::Tensor y = QuantizedLinearFunction::apply(x, &w);
  return bias.defined() ? y + bias.to(y.scalar_type()) : y;
}

}  // namespace hyft::quant
