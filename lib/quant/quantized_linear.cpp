#include "quant/quantized_linear.h"

#include "common/error.h"
#include "kernels/fused_ops.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#ifdef HYFT_HAVE_CUDA_KERNELS
#include "kernels/cuda_launch.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace hyft::quant {

Format parse_format(const std::string& text, const char* flag) {
  if (text == "none" || text.empty()) return Format::None;
  if (text == "nf4") return Format::Nf4;
  if (text == "nf4-dq") return Format::Nf4DoubleQuant;
  if (text == "int8") return Format::Int8;
  if (text == "int4") return Format::Int4;
  fail(flag, ": '", text, "' is not a quantization; use nf4, nf4-dq, int8, int4 or none");
}

const char* format_name(Format f) {
  switch (f) {
    case Format::Nf4: return "nf4";
    case Format::Nf4DoubleQuant: return "nf4-dq";
    case Format::Int8: return "int8";
    case Format::Int4: return "int4";
    default: return "none";
  }
}

QuantizedWeight QuantizedWeight::from(const at::Tensor& w, Format format) {
  QuantizedWeight q;
  q.format = format;
  q.dtype = w.scalar_type();
  if (q.is_nf4()) q.nf4 = quantize_nf4(w, 64, format == Format::Nf4DoubleQuant);
  else if (format == Format::Int8) q.int8 = quantize_int8(w);
  else if (format == Format::Int4) q.int4 = quantize_int4(w);
  return q;
}

at::Tensor QuantizedWeight::dequantize_reference() const {
  switch (format) {
    case Format::Nf4:
    case Format::Nf4DoubleQuant: return dequantize_nf4(nf4, dtype);
    case Format::Int8: return dequantize_int8(int8, dtype);
    case Format::Int4: return dequantize_int4(int4, dtype);
    default: TORCH_INTERNAL_ASSERT(false, "dequantize: the weight is not quantized");
  }
}

int64_t QuantizedWeight::rows() const {
  return is_nf4() ? nf4.rows : format == Format::Int4 ? int4.rows : int8.q.size(0);
}

int64_t QuantizedWeight::cols() const {
  return is_nf4() ? nf4.cols : format == Format::Int4 ? int4.cols : int8.q.size(1);
}

int64_t QuantizedWeight::bytes() const {
  switch (format) {
    case Format::Nf4: return nf4.packed.numel() + nf4.absmax.numel() * 4;
    case Format::Nf4DoubleQuant: return nf4.packed.numel() + nf4.absmax_codes.numel() + nf4.absmax2.numel() * 4;
    case Format::Int8: return int8.q.numel() + int8.absmax.numel() * 4;
    case Format::Int4: return int4.packed.numel() + (int4.scale.numel() + int4.minimum.numel()) * 2;
    default: return 0;
  }
}

namespace {

#ifdef HYFT_HAVE_CUDA_KERNELS
const at::Tensor& codes_of(const QuantizedWeight& w) {
  return w.is_nf4() ? w.nf4.packed : w.format == Format::Int4 ? w.int4.packed : w.int8.q;
}

bool kernel_dtype(at::ScalarType s) { return s == at::kFloat || s == at::kBFloat16 || s == at::kHalf; }

bool kernels_apply(const QuantizedWeight& w) {
  return w.format != Format::None && kernel_dtype(w.dtype) && kernels::fused_kernels_on(codes_of(w));
}

kernels::cuda::DType dtype_of(at::ScalarType s) {
  return s == at::kBFloat16 ? kernels::cuda::DType::BF16 : s == at::kHalf ? kernels::cuda::DType::F16
                                                                          : kernels::cuda::DType::F32;
}

kernels::cuda::QuantizedView view_of(const QuantizedWeight& w) {
  using kernels::cuda::QFormat;
  kernels::cuda::QuantizedView v;
  if (w.is_nf4()) {
    v.format = QFormat::Nf4;
    v.codes = w.nf4.packed.data_ptr();
    v.rows = w.nf4.rows;
    v.cols = w.nf4.cols;
    v.block = w.nf4.block;
    if (w.nf4.double_quantized()) {
      v.scale = w.nf4.absmax_codes.data_ptr();
      v.scale2 = w.nf4.absmax2.data_ptr<float>();
      v.code8 = w.nf4.code.data_ptr<float>();
      v.offset = w.nf4.offset;
    } else {
      v.scale = w.nf4.absmax.data_ptr();
    }
  } else if (w.format == Format::Int4) {
    v.format = QFormat::Int4;
    v.codes = w.int4.packed.data_ptr();
    v.scale = w.int4.scale.data_ptr();
    v.minimum = w.int4.minimum.data_ptr();
    v.rows = w.int4.rows;
    v.cols = w.int4.cols;
    v.block = w.int4.block;
  } else {
    v.format = QFormat::Int8;
    v.codes = w.int8.q.data_ptr();
    v.scale = w.int8.absmax.data_ptr();
    v.rows = w.int8.q.size(0);
    v.cols = w.int8.q.size(1);
  }
  return v;
}

static_assert(kGemvRows == kernels::cuda::kGemvMaxRows, "the projection's GEMV limit is the kernel's");

cudaStream_t stream_on(const at::Device& d) { return c10::cuda::getCurrentCUDAStream(d.index()).stream(); }
#endif

}  // namespace

at::Tensor QuantizedWeight::dequantize() const {
#ifdef HYFT_HAVE_CUDA_KERNELS
  if (kernels_apply(*this)) {
    const at::Tensor& codes = codes_of(*this);
    const c10::cuda::CUDAGuard guard(codes.device());
    at::Tensor out = at::empty({rows(), cols()}, codes.options().dtype(dtype));
    kernels::cuda::dequantize(view_of(*this), out.data_ptr(), dtype_of(dtype), stream_on(codes.device()));
    return out;
  }
#endif
  return dequantize_reference();
}

at::Tensor quantized_gemv(const at::Tensor& x, const QuantizedWeight& w) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  if (!kernels_apply(w) || x.dim() != 2 || x.size(0) > kGemvRows || x.size(1) != w.cols() ||
      x.scalar_type() != w.dtype || x.device() != codes_of(w).device())
    return {};
  const at::Tensor xc = x.contiguous();
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor y = at::empty({x.size(0), w.rows()}, x.options());
  if (kernels::cuda::quantized_gemv(view_of(w), xc.data_ptr(), y.data_ptr(), x.size(0), dtype_of(w.dtype),
                                    stream_on(x.device())))
    return y;
#else
  (void)x;
  (void)w;
#endif
  return {};
}

#ifdef HYFT_HAVE_CUDA_KERNELS
namespace {
// Whether x is one row that w's single-row kernels take, without autograd.
bool one_row_of(const at::Tensor& x, const QuantizedWeight& w) {
  const int64_t in = x.dim() > 0 ? x.size(-1) : 0;
  return !at::GradMode::is_enabled() && kernels_apply(w) && in == w.cols() && x.numel() == in &&
         x.scalar_type() == w.dtype && x.device() == codes_of(w).device();
}
}  // namespace
#endif

at::Tensor quantized_gemv_swiglu(const at::Tensor& x, const QuantizedWeight& w, const kernels::InputNorm& norm) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  kernels::cuda::RowNorm n;
  if (!one_row_of(x, w) || !kernels::row_norm_args(x, norm, n)) return {};
  const at::Tensor xc = x.contiguous();
  const c10::cuda::CUDAGuard guard(x.device());
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = w.rows() / 2;
  at::Tensor y = at::empty(shape, x.options());
  if (kernels::cuda::gemv_swiglu(view_of(w), /*dense=*/false, xc.data_ptr(), n, y.data_ptr(), dtype_of(w.dtype),
                                 stream_on(x.device())))
    return y;
#else
  (void)x, (void)w, (void)norm;
#endif
  return {};
}

at::Tensor quantized_gemv_rotary_slot_write(const at::Tensor& x, const QuantizedWeight& w,
                                            const kernels::SlotWrite& t, const kernels::InputNorm& norm) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  kernels::cuda::RowNorm n;
  if (!one_row_of(x, w) || !kernels::row_norm_args(x, norm, n)) return {};
  kernels::cuda::RotaryDecodeArgs a;
  const at::Tensor q = kernels::rotary_slot_args(x, 1, t, a);
  if (!q.defined()) return {};
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  if (kernels::cuda::gemv_rotary_slot_write(view_of(w), /*dense=*/false, xc.data_ptr(), n, a, stream_on(x.device())))
    return q;
#else
  (void)x, (void)w, (void)t, (void)norm;
#endif
  return {};
}

at::Tensor quantized_gemv_add_residual(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& residual) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  if (!one_row_of(x, w) || !kernels::residual_fits(residual, x, w.rows())) return {};
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  at::Tensor y = at::empty(residual.sizes(), residual.options());
  if (kernels::cuda::gemv_add_residual(view_of(w), /*dense=*/false, xc.data_ptr(), residual.data_ptr(), y.data_ptr(),
                                       dtype_of(w.dtype), stream_on(x.device())))
    return y;
#else
  (void)x, (void)w, (void)residual;
#endif
  return {};
}

bool can_stack(const std::vector<const QuantizedWeight*>& parts) {
  if (parts.empty()) return false;
  const QuantizedWeight& first = *parts.front();
  for (const QuantizedWeight* p : parts) {
    if (p->format != first.format || p->dtype != first.dtype || p->cols() != first.cols()) return false;
    switch (p->format) {
      case Format::Nf4:
        if (p->nf4.block != first.nf4.block || (p->nf4.rows * p->nf4.cols) % p->nf4.block != 0) return false;
        break;
      case Format::Int4:
        if (p->int4.block != first.int4.block || (p->int4.rows * p->int4.cols) % p->int4.block != 0) return false;
        break;
      case Format::Int8: break;
      default: return false;  // none, nf4-dq
    }
  }
  return true;
}

QuantizedWeight stack_rows(const std::vector<const QuantizedWeight*>& parts) {
  TORCH_INTERNAL_ASSERT(can_stack(parts), "stack_rows: the weights cannot be stacked");
  auto cat = [&](auto member) {
    std::vector<at::Tensor> t;
    for (const QuantizedWeight* p : parts) t.push_back(member(*p));
    return at::cat(t, 0);
  };
  QuantizedWeight out = *parts.front();
  int64_t rows = 0;
  for (const QuantizedWeight* p : parts) rows += p->rows();
  switch (out.format) {
    case Format::Nf4:
      out.nf4.packed = cat([](const QuantizedWeight& p) { return p.nf4.packed; });
      out.nf4.absmax = cat([](const QuantizedWeight& p) { return p.nf4.absmax; });
      out.nf4.rows = rows;
      break;
    case Format::Int4:
      out.int4.packed = cat([](const QuantizedWeight& p) { return p.int4.packed; });
      out.int4.scale = cat([](const QuantizedWeight& p) { return p.int4.scale; });
      out.int4.minimum = cat([](const QuantizedWeight& p) { return p.int4.minimum; });
      out.int4.rows = rows;
      break;
    default:  // Int8
      out.int8.q = cat([](const QuantizedWeight& p) { return p.int8.q; });
      out.int8.absmax = cat([](const QuantizedWeight& p) { return p.int8.absmax; });
  }
  return out;
}

QuantizedWeight row_slice(const QuantizedWeight& w, int64_t first, int64_t count) {
  QuantizedWeight out = w;
  const int64_t cols = w.cols();
  switch (w.format) {
    case Format::Nf4: {
      const int64_t block = w.nf4.block;
      out.nf4.packed = w.nf4.packed.narrow(0, first * cols / 2, count * cols / 2);
      out.nf4.absmax = w.nf4.absmax.narrow(0, first * cols / block, count * cols / block);
      out.nf4.rows = count;
      break;
    }
    case Format::Int4: {
      const int64_t block = w.int4.block;
      out.int4.packed = w.int4.packed.narrow(0, first * cols / 2, count * cols / 2);
      out.int4.scale = w.int4.scale.narrow(0, first * cols / block, count * cols / block);
      out.int4.minimum = w.int4.minimum.narrow(0, first * cols / block, count * cols / block);
      out.int4.rows = count;
      break;
    }
    case Format::Int8:
      out.int8.q = w.int8.q.narrow(0, first, count);
      out.int8.absmax = w.int8.absmax.narrow(0, first, count);
      break;
    default: TORCH_INTERNAL_ASSERT(false, "row_slice: not a stackable weight");
  }
  return out;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The weight is reached through the context (the projection that owns it outlives
// the backward pass); only x's gradient flows.
struct QuantizedLinearFunction : torch::autograd::Function<QuantizedLinearFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const QuantizedWeight* w) {
    ctx->saved_data["w"] = reinterpret_cast<int64_t>(w);
    const at::Tensor xw = x.to(w->dtype);
    const int64_t in = xw.size(-1), m = in == 0 ? 0 : xw.numel() / in;
    if (m >= 1 && m <= kGemvRows) {  // a decoding step: the GEMV reads the codes alone
      const at::Tensor y = quantized_gemv(xw.reshape({m, in}), *w);
      if (y.defined()) {
        std::vector<int64_t> shape = xw.sizes().vec();
        shape.back() = w->rows();
        return y.view(shape);
      }
    }
    return at::linear(xw, w->dequantize());
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
