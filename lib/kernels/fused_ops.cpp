#include "kernels/fused_ops.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#ifdef HYFT_HAVE_CUDA_KERNELS
#include "kernels/cuda_launch.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace hyft::kernels {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool built_with_cuda_kernels() {
#ifdef HYFT_HAVE_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

bool fused_kernels_on(const at::Tensor& x) {
  static const bool allowed = [] {
    const char* v = std::getenv("HYFT_FUSED_KERNELS");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return built_with_cuda_kernels() && allowed && x.is_cuda();
}

// --- references -------------------------------------------------------------
at::Tensor swiglu_reference(const at::Tensor& gate, const at::Tensor& up) { return at::silu(gate) * up; }

at::Tensor rotary_reference(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos.unsqueeze(2) + rotated * sin.unsqueeze(2);  // cos (B, T, 1, Dh) over the heads
}

at::Tensor cross_entropy_rows_reference_(at::Tensor& logits, const at::Tensor& labels) {
  const at::Tensor x = logits.to(at::kFloat);
  const at::Tensor lse = at::logsumexp(x, 1);                                 // (n,)
  const at::Tensor loss = lse - x.gather(1, labels.unsqueeze(1)).squeeze(1);  // (n,)
  at::Tensor grad = at::exp(x - lse.unsqueeze(1));
  grad.scatter_add_(1, labels.unsqueeze(1), at::full({labels.size(0), 1}, -1.0f, grad.options()));
  logits.copy_(grad);
  return loss;
}

#ifdef HYFT_HAVE_CUDA_KERNELS
namespace {

bool kernel_dtype(at::ScalarType s) { return s == at::kFloat || s == at::kBFloat16 || s == at::kHalf; }

cuda::DType dtype_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kBFloat16: return cuda::DType::BF16;
    case at::kHalf: return cuda::DType::F16;
    default: return cuda::DType::F32;
  }
}

cudaStream_t stream_of(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }

// --- swiglu -----------------------------------------------------------------
struct SwiGLUFunction : torch::autograd::Function<SwiGLUFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate_in, const at::Tensor& up_in) {
    const c10::cuda::CUDAGuard guard(gate_in.device());
    const at::Tensor gate = gate_in.contiguous(), up = up_in.contiguous();
    at::Tensor out = at::empty_like(gate);
    cuda::swiglu_forward(gate.data_ptr(), up.data_ptr(), out.data_ptr(), gate.numel(), dtype_of(gate),
                         stream_of(gate));
    ctx->save_for_backward({gate, up});
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &gate = saved[0], &up = saved[1];
    const c10::cuda::CUDAGuard guard(gate.device());
    const at::Tensor d = grads[0].to(gate.scalar_type()).contiguous();
    // The gradients are written over gate and up (each element read, then written
    // by the same thread): no new (N, F) buffers at the backward pass's peak.
    cuda::swiglu_backward(d.data_ptr(), gate.data_ptr(), up.data_ptr(), gate.data_ptr(), up.data_ptr(),
                          gate.numel(), dtype_of(gate), stream_of(gate));
    return {gate, up};
  }
};

// --- rotary -----------------------------------------------------------------
at::Tensor rotary_launch(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, bool backward) {
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty_like(x);
  cuda::rotary(x.data_ptr(), cos.data_ptr(), sin.data_ptr(), out.data_ptr(), x.size(0) * x.size(1), x.size(2),
               x.size(3), backward, dtype_of(x), stream_of(x));
  return out;
}

struct RotaryFunction : torch::autograd::Function<RotaryFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos_in,
                            const at::Tensor& sin_in) {
    const at::Tensor cos = cos_in.contiguous(), sin = sin_in.contiguous();
    ctx->save_for_backward({cos, sin});
    return rotary_launch(x.contiguous(), cos, sin, /*backward=*/false);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor d = grads[0].to(saved[0].scalar_type()).contiguous();
    return {rotary_launch(d, saved[0], saved[1], /*backward=*/true), at::Tensor(), at::Tensor()};
  }
};

}  // namespace
#endif  // HYFT_HAVE_CUDA_KERNELS

// --- entry points -----------------------------------------------------------
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  if (fused_kernels_on(gate) && up.is_cuda() && gate.sizes() == up.sizes() &&
      gate.scalar_type() == up.scalar_type() && kernel_dtype(gate.scalar_type()))
    return SwiGLUFunction::apply(gate, up);
#endif
  return swiglu_reference(gate, up);
}

at::Tensor rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  const bool same_rows = x.dim() == 4 && cos.dim() == 3 && cos.sizes() == sin.sizes() &&
                         cos.size(0) == x.size(0) && cos.size(1) == x.size(1) && cos.size(2) == x.size(3);
  if (fused_kernels_on(x) && same_rows && x.size(3) % 2 == 0 && cos.scalar_type() == x.scalar_type() &&
      sin.scalar_type() == x.scalar_type() && kernel_dtype(x.scalar_type()))
    return RotaryFunction::apply(x, cos, sin);
#endif
  return rotary_reference(x, cos, sin);
}

at::Tensor cross_entropy_rows_(at::Tensor& logits, const at::Tensor& labels) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  if (fused_kernels_on(logits) && logits.is_contiguous() && kernel_dtype(logits.scalar_type())) {
    const c10::cuda::CUDAGuard guard(logits.device());
    const at::Tensor y = labels.to(at::kLong).contiguous();
    at::Tensor loss = at::empty({logits.size(0)}, logits.options().dtype(at::kFloat));
    cuda::cross_entropy_rows_inplace(logits.data_ptr(), y.data_ptr<int64_t>(), loss.data_ptr<float>(),
                                     logits.size(0), logits.size(1), dtype_of(logits), stream_of(logits));
    return loss;
  }
#endif
  return cross_entropy_rows_reference_(logits, labels);
}

namespace {
// The inference kernels' common conditions: no gradient wanted, CUDA, a kernel dtype.
bool inference_kernel(const at::Tensor& x) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  return !at::GradMode::is_enabled() && fused_kernels_on(x) && kernel_dtype(x.scalar_type());
#else
  (void)x;
  return false;
#endif
}
}  // namespace

at::Tensor rms_norm_inference(const at::Tensor& x, const at::Tensor& weight, double eps) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  if (inference_kernel(x) && weight.scalar_type() == x.scalar_type() && weight.is_contiguous()) {
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous();
    at::Tensor y = at::empty_like(xc);
    const int64_t D = x.size(-1);
    cuda::rms_norm(xc.data_ptr(), nullptr, weight.data_ptr(), nullptr, y.data_ptr(), xc.numel() / D, D, float(eps),
                   dtype_of(xc), stream_of(xc));
    return y;
  }
#endif
  return at::rms_norm(x, {x.size(-1)}, weight, eps);
}

std::pair<at::Tensor, at::Tensor> add_rms_norm_inference(const at::Tensor& x, const at::Tensor& d,
                                                         const at::Tensor& weight, double eps) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  if (inference_kernel(x) && d.sizes() == x.sizes() && d.scalar_type() == x.scalar_type() &&
      weight.scalar_type() == x.scalar_type() && weight.is_contiguous()) {
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous(), dc = d.contiguous();
    at::Tensor h = at::empty_like(xc), y = at::empty_like(xc);
    const int64_t D = x.size(-1);
    cuda::rms_norm(xc.data_ptr(), dc.data_ptr(), weight.data_ptr(), h.data_ptr(), y.data_ptr(), xc.numel() / D, D,
                   float(eps), dtype_of(xc), stream_of(xc));
    return {h, y};
  }
#endif
  const at::Tensor h = x + d;
  return {h, at::rms_norm(h, {h.size(-1)}, weight, eps)};
}

void slot_cache_write_reference_(at::Tensor& k_cache, at::Tensor& v_cache, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& positions) {
  const int64_t B = k.size(0);
  std::vector<int64_t> row_shape = k_cache.sizes().slice(2).vec();  // a cache row's shape, e.g. (Hkv, Dh)
  row_shape.insert(row_shape.begin(), B);
  const at::Tensor rows = at::arange(B, positions.options());
  k_cache.index_put_({rows, positions}, k.reshape(row_shape).to(k_cache.scalar_type()));
  v_cache.index_put_({rows, positions}, v.reshape(row_shape).to(v_cache.scalar_type()));
}

void slot_cache_write_(at::Tensor& k_cache, at::Tensor& v_cache, const at::Tensor& k, const at::Tensor& v,
                       const at::Tensor& positions) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  if (inference_kernel(k) && k_cache.is_contiguous() && v_cache.is_contiguous() &&
      k.scalar_type() == k_cache.scalar_type() && v.scalar_type() == v_cache.scalar_type() &&
      k_cache.scalar_type() == v_cache.scalar_type() && positions.is_cuda() && positions.scalar_type() == at::kLong) {
    const c10::cuda::CUDAGuard guard(k.device());
    const int64_t B = k.size(0), width = k_cache.numel() / (k_cache.size(0) * k_cache.size(1));
    const at::Tensor kc = k.reshape({B, width}).contiguous(), vc = v.reshape({B, width}).contiguous();
    const at::Tensor pos = positions.contiguous();
    cuda::slot_cache_write(kc.data_ptr(), vc.data_ptr(), pos.data_ptr<int64_t>(), k_cache.data_ptr(),
                           v_cache.data_ptr(), B, k_cache.size(1), width, dtype_of(k_cache), stream_of(k_cache));
    return;
  }
#endif
  slot_cache_write_reference_(k_cache, v_cache, k, v, positions);
}

}  // namespace hyft::kernels
