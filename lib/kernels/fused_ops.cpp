#include "kernels/fused_ops.h"

#include "common/runtime.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
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
  static const bool allowed = !switched_off("HYFT_FUSED_KERNELS");
  return built_with_cuda_kernels() && allowed && x.is_cuda();
}

bool gemv_epilogues_on() {
  static const bool on = !switched_off("HYFT_GEMV_EPILOGUES");
  return on;
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
    const int64_t F = gate.dim() ? gate.size(-1) : 1, rows = F ? gate.numel() / F : 0;
    cuda::swiglu_forward(gate.data_ptr(), up.data_ptr(), out.data_ptr(), rows, F, F, dtype_of(gate), stream_of(gate));
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
    const int64_t F = gate.dim() ? gate.size(-1) : 1, rows = F ? gate.numel() / F : 0;
    cuda::swiglu_backward(d.data_ptr(), gate.data_ptr(), up.data_ptr(), gate.data_ptr(), up.data_ptr(), rows, F, F,
                          dtype_of(gate), stream_of(gate));
    return {gate, up};
  }
};

// y (..., 2F) = [gate | up], one fused GEMM's output: read in place, and its
// gradient written over it, so the gradient reaches the GEMM without a concatenation.
struct SwiGLUPackedFunction : torch::autograd::Function<SwiGLUPackedFunction> {
  static void* upper_half(const at::Tensor& y) {
    return static_cast<char*>(y.data_ptr()) + y.size(-1) / 2 * y.element_size();
  }
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& y_in) {
    const c10::cuda::CUDAGuard guard(y_in.device());
    const at::Tensor y = y_in.contiguous();
    const int64_t F = y.size(-1) / 2, rows = y.numel() / (2 * F);
    std::vector<int64_t> shape = y.sizes().vec();
    shape.back() = F;
    at::Tensor out = at::empty(shape, y.options());
    cuda::swiglu_forward(y.data_ptr(), upper_half(y), out.data_ptr(), rows, F, 2 * F, dtype_of(y), stream_of(y));
    ctx->save_for_backward({y});
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor y = ctx->get_saved_variables()[0];
    const c10::cuda::CUDAGuard guard(y.device());
    const at::Tensor d = grads[0].to(y.scalar_type()).contiguous();
    const int64_t F = y.size(-1) / 2, rows = y.numel() / (2 * F);
    cuda::swiglu_backward(d.data_ptr(), y.data_ptr(), upper_half(y), y.data_ptr(), upper_half(y), rows, F, 2 * F,
                          dtype_of(y), stream_of(y));
    return {y};
  }
};

// --- rotary -----------------------------------------------------------------
// Rows of x (B, T, H, Dh) one stride apart, each row's (H, Dh) contiguous: a contiguous
// tensor, or q / k as column slices of the fused q/k/v output. The row stride, or 0.
int64_t row_stride(const at::Tensor& x) {
  if (x.dim() != 4 || x.stride(3) != 1 || x.stride(2) != x.size(3) || x.stride(0) != x.size(1) * x.stride(1))
    return 0;
  return x.stride(1);
}

at::Tensor rotary_launch(const at::Tensor& x_in, const at::Tensor& cos, const at::Tensor& sin, bool backward) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = row_stride(x_in) ? x_in : x_in.contiguous();
  at::Tensor out = at::empty(x.sizes(), x.options());
  cuda::rotary(x.data_ptr(), cos.data_ptr(), sin.data_ptr(), out.data_ptr(), x.size(0) * x.size(1), x.size(2),
               x.size(3), row_stride(x), backward, dtype_of(x), stream_of(x));
  return out;
}

struct RotaryFunction : torch::autograd::Function<RotaryFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos_in,
                            const at::Tensor& sin_in) {
    const at::Tensor cos = cos_in.contiguous(), sin = sin_in.contiguous();
    ctx->save_for_backward({cos, sin});
    return rotary_launch(x, cos, sin, /*backward=*/false);
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

at::Tensor swiglu_packed(const at::Tensor& y) {
  TORCH_INTERNAL_ASSERT(y.dim() >= 1 && y.size(-1) % 2 == 0, "swiglu_packed: the last dimension must be even");
#ifdef HYFT_HAVE_CUDA_KERNELS
  if (fused_kernels_on(y) && kernel_dtype(y.scalar_type()) && y.numel() > 0) return SwiGLUPackedFunction::apply(y);
#endif
  return swiglu_packed_reference(y);
}

at::Tensor swiglu_packed_reference(const at::Tensor& y) {
  const int64_t F = y.size(-1) / 2;
  return swiglu_reference(y.narrow(-1, 0, F), y.narrow(-1, F, F));
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

at::Tensor argmax_rows(const at::Tensor& x) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  if (inference_kernel(x) && x.dim() == 2 && x.size(0) > 0 && x.size(1) > 0) {
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous();
    at::Tensor out = at::empty({x.size(0)}, x.options().dtype(at::kLong));
    if (cuda::argmax_rows(xc.data_ptr(), xc.size(0), xc.size(1), out.data_ptr<int64_t>(), dtype_of(xc),
                          stream_of(xc)))
      return out;
  }
#endif
  return x.argmax(1);
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
    // (B, width) views: read in place when each row is contiguous (v as a slice of the
    // fused q/k/v output), else copied.
    auto rows_of = [&](const at::Tensor& t) {
      const at::Tensor r = t.reshape({B, width});
      return r.stride(1) == 1 ? r : r.contiguous();
    };
    const at::Tensor kc = rows_of(k), vc = rows_of(v);
    const at::Tensor pos = positions.contiguous();
    cuda::slot_cache_write(kc.data_ptr(), vc.data_ptr(), pos.data_ptr<int64_t>(), k_cache.data_ptr(),
                           v_cache.data_ptr(), B, k_cache.size(1), width, kc.stride(0), vc.stride(0), dtype_of(k_cache),
                           stream_of(k_cache));
    return;
  }
#endif
  slot_cache_write_reference_(k_cache, v_cache, k, v, positions);
}

at::Tensor rotary_slot_write_reference_(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& cos, const at::Tensor& sin, at::Tensor& k_cache,
                                        at::Tensor& v_cache, const at::Tensor& positions) {
  const at::Tensor kr = rotary_reference(k, cos, sin);
  slot_cache_write_reference_(k_cache, v_cache, kr.select(1, 0), v.select(1, 0), positions);
  return rotary_reference(q, cos, sin);
}

at::Tensor rotary_slot_args(const at::Tensor& x, int64_t B, const SlotWrite& t, cuda::RotaryDecodeArgs& a) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  const at::ScalarType dt = x.scalar_type();
  const at::Tensor &kc = t.k_cache, &vc = t.v_cache;
  if (!inference_kernel(x) || kc.dim() != 4 || kc.size(2) != t.kv_heads || !kc.is_contiguous() ||
      !vc.is_contiguous() || vc.sizes() != kc.sizes() || kc.scalar_type() != dt || vc.scalar_type() != dt ||
      kc.device() != x.device() || vc.device() != x.device() || t.cos.scalar_type() != dt ||
      t.sin.scalar_type() != dt || !t.cos.is_contiguous() || !t.sin.is_contiguous() ||
      t.cos.numel() != B * kc.size(3) || t.sin.numel() != B * kc.size(3) || !t.positions.is_contiguous() ||
      t.positions.device() != x.device() || t.positions.scalar_type() != at::kLong || t.positions.numel() != B)
    return {};
  const int64_t Dh = kc.size(3);
  at::Tensor out = at::empty({B, 1, t.heads, Dh}, x.options());
  a.cos = t.cos.data_ptr();
  a.sin = t.sin.data_ptr();
  a.positions = t.positions.data_ptr<int64_t>();
  a.q_out = out.data_ptr();
  a.k_cache = kc.data_ptr();
  a.v_cache = vc.data_ptr();
  a.rows = B;
  a.heads = t.heads;
  a.kv_heads = t.kv_heads;
  a.head_dim = Dh;
  a.max_len = kc.size(1);
  a.dtype = dtype_of(x);
  return out;
#else
  (void)x, (void)B, (void)t, (void)a;
  return {};
#endif
}

at::Tensor rotary_slot_write_(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cos,
                              const at::Tensor& sin, at::Tensor& k_cache, at::Tensor& v_cache,
                              const at::Tensor& positions) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  // (B, 1, heads, Dh) with each row's heads contiguous; rows may be any stride apart.
  auto heads_contiguous = [](const at::Tensor& t) {
    return t.dim() == 4 && t.size(1) == 1 && t.stride(3) == 1 && t.stride(2) == t.size(3);
  };
  if (heads_contiguous(q) && heads_contiguous(k) && heads_contiguous(v) && k.scalar_type() == q.scalar_type() &&
      v.scalar_type() == q.scalar_type() && k_cache.dim() == 4 && k_cache.size(3) == q.size(3)) {
    cuda::RotaryDecodeArgs a;
    const at::Tensor out =
        rotary_slot_args(q, q.size(0), {cos, sin, k_cache, v_cache, positions, q.size(2), k.size(2)}, a);
    if (out.defined()) {
      const c10::cuda::CUDAGuard guard(q.device());
      a.q = q.data_ptr();
      a.k = k.data_ptr();
      a.v = v.data_ptr();
      a.q_stride = q.stride(0);
      a.k_stride = k.stride(0);
      a.v_stride = v.stride(0);
      cuda::rotary_decode(a, stream_of(q));
      return out;
    }
  }
#endif
  const at::Tensor kr = rotary(k, cos, sin);
  slot_cache_write_(k_cache, v_cache, kr.select(1, 0), v.select(1, 0), positions);
  return rotary(q, cos, sin);
}

namespace {
// SDPA of q (B, 1, H, Dh) over the slots' first `keys` keys under a dense (B, 1, 1, keys) mask.
at::Tensor sdpa_over_slots(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache, int64_t keys,
                           const attention::AttentionMask& dense) {
  const int64_t B = q.size(0);
  const at::Tensor k = k_cache.narrow(0, 0, B).narrow(1, 0, keys).transpose(1, 2);  // (B, Hkv, keys, Dh)
  const at::Tensor v = v_cache.narrow(0, 0, B).narrow(1, 0, keys).transpose(1, 2);
  return attention::attention(q.transpose(1, 2), k, v, dense).transpose(1, 2);
}
}  // namespace

at::Tensor slot_attention_reference(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                                    const at::Tensor& positions, int64_t keys, const attention::HybridSettings& rule) {
  return sdpa_over_slots(q, k_cache, v_cache, keys, attention::make_slot_attention_mask(rule, positions, keys));
}

at::Tensor slot_attention_kernel(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                                 const at::Tensor& positions, int64_t keys, const attention::HybridSettings& rule) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  if (inference_kernel(q) && q.dim() == 4 && q.size(1) == 1 && q.is_contiguous() && k_cache.is_contiguous() &&
      v_cache.is_contiguous() && k_cache.scalar_type() == q.scalar_type() &&
      v_cache.scalar_type() == q.scalar_type() && positions.is_cuda() && positions.scalar_type() == at::kLong &&
      keys <= k_cache.size(1)) {
    const c10::cuda::CUDAGuard guard(q.device());
    const int64_t B = q.size(0), H = q.size(2), Dh = q.size(3);
    at::Tensor out = at::empty_like(q);
    const at::Tensor work = at::empty({B, H, cuda::slot_attention_splits(B, k_cache.size(2), keys), Dh + 2},
                                      q.options().dtype(at::kFloat));
    const at::Tensor pos = positions.contiguous();
    cuda::SlotAttentionArgs a;
    a.q = q.data_ptr();
    a.k_cache = k_cache.data_ptr();
    a.v_cache = v_cache.data_ptr();
    a.positions = pos.data_ptr<int64_t>();
    a.out = out.data_ptr();
    a.workspace = work.data_ptr<float>();
    a.rows = B;
    a.heads = H;
    a.kv_heads = k_cache.size(2);
    a.head_dim = Dh;
    a.max_len = k_cache.size(1);
    a.keys = keys;
    a.window = rule.window_size;
    a.global_stride = rule.window_size > 0 ? rule.global_stride() : 0;
    a.scale = float(1.0 / std::sqrt(double(Dh)));
    a.dtype = dtype_of(q);
    if (cuda::slot_attention(a, stream_of(q))) return out;
  }
#else
  (void)q, (void)k_cache, (void)v_cache, (void)positions, (void)keys, (void)rule;
#endif
  return {};
}

// The kernel wins where a step reads few keys and loses where it reads many
// (hyft_kernels_check --bench on an H200, against SDPA + the mask, in CUDA graphs):
// B1 H16 keys 256 2.38x, keys 1024 1.56x, B4 H16 keys 256 1.82x, B1 H32/8 keys 256
// 1.71x; B32 H16 keys 256 0.89x, B1 H32/8 keys 4096 0.99x, B32 H32/8 keys 1024 0.34x.
// It takes rows * query heads * keys up to this many, SDPA the rest.
constexpr int64_t kSlotAttentionKernelWork = 16 * 1024;

at::Tensor slot_attention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                          const at::Tensor& positions, int64_t keys, const attention::AttentionMask& mask) {
  if (q.dim() == 4 && q.size(0) * q.size(2) * keys <= kSlotAttentionKernelWork) {
    const at::Tensor out = slot_attention_kernel(q, k_cache, v_cache, positions, keys, mask.rule);
    if (out.defined()) return out;
  }
  // The dense mask made once a step, by the first layer that needs it.
  if (!mask.lazy_allowed.defined())
    mask.lazy_allowed = attention::make_slot_attention_mask(mask.rule, positions, keys).allowed;
  attention::AttentionMask dense = mask;
  dense.allowed = mask.lazy_allowed;
  return sdpa_over_slots(q, k_cache, v_cache, keys, dense);
}

#ifdef HYFT_HAVE_CUDA_KERNELS
namespace {
// Whether the single-row GEMVs take x and a dense W (out, in): x one row on the
// inference path, W contiguous in x's dtype on its device. w: W through the GEMVs'
// view (codes = W).
bool dense_one_row(const at::Tensor& x, const at::Tensor& weight, cuda::QuantizedView& w) {
  const int64_t in = x.dim() > 0 ? x.size(-1) : 0;
  if (!inference_kernel(x) || in == 0 || x.numel() != in || weight.dim() != 2 || weight.size(1) != in ||
      !weight.is_contiguous() || weight.scalar_type() != x.scalar_type() || weight.device() != x.device())
    return false;
  w.codes = weight.data_ptr();
  w.rows = weight.size(0);
  w.cols = in;
  return true;
}

// x's shape with its last dimension `n`.
at::Tensor empty_row(const at::Tensor& x, int64_t n) {
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = n;
  return at::empty(shape, x.options());
}
}  // namespace
#endif

at::Tensor linear_inference_kernel(const at::Tensor& x, const at::Tensor& weight) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  cuda::QuantizedView w;
  if (dense_one_row(x, weight, w)) {
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous();
    at::Tensor y = empty_row(x, w.rows);
    if (cuda::dense_gemv(w.codes, w.rows, w.cols, xc.data_ptr(), y.data_ptr(), dtype_of(x), stream_of(x))) return y;
  }
#else
  (void)x, (void)weight;
#endif
  return {};
}

bool row_norm_args(const at::Tensor& x, const InputNorm& n, cuda::RowNorm& a) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  if (!n.weight.defined()) return true;  // no norm
  const at::Tensor& w = n.weight;
  if (w.dim() != 1 || x.dim() == 0 || w.size(0) != x.size(-1) || !w.is_contiguous() ||
      w.scalar_type() != x.scalar_type() || w.device() != x.device())
    return false;
  a.weight = w.data_ptr();
  a.eps = float(n.eps);
  return true;
#else
  (void)x, (void)n, (void)a;
  return false;
#endif
}

at::Tensor linear_swiglu_inference(const at::Tensor& x, const at::Tensor& weight, const InputNorm& norm) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  cuda::QuantizedView w;
  cuda::RowNorm n;
  if (dense_one_row(x, weight, w) && w.rows % 2 == 0 && row_norm_args(x, norm, n)) {
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous();
    at::Tensor y = empty_row(x, w.rows / 2);
    if (cuda::gemv_swiglu(w, /*dense=*/true, xc.data_ptr(), n, y.data_ptr(), dtype_of(x), stream_of(x))) return y;
  }
#else
  (void)x, (void)weight, (void)norm;
#endif
  return {};
}

at::Tensor linear_rotary_slot_write(const at::Tensor& x, const at::Tensor& weight, const SlotWrite& t,
                                    const InputNorm& norm) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  cuda::QuantizedView w;
  cuda::RowNorm n;
  if (dense_one_row(x, weight, w) && row_norm_args(x, norm, n)) {
    cuda::RotaryDecodeArgs a;
    const at::Tensor q = rotary_slot_args(x, 1, t, a);
    if (!q.defined()) return {};
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous();
    if (cuda::gemv_rotary_slot_write(w, /*dense=*/true, xc.data_ptr(), n, a, stream_of(x))) return q;
  }
#else
  (void)x, (void)weight, (void)t, (void)norm;
#endif
  return {};
}

bool residual_fits(const at::Tensor& residual, const at::Tensor& x, int64_t D) {
  return residual.numel() == D && residual.is_contiguous() && residual.scalar_type() == x.scalar_type() &&
         residual.device() == x.device();
}

at::Tensor linear_add_residual(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& residual) {
#ifdef HYFT_HAVE_CUDA_KERNELS
  cuda::QuantizedView w;
  if (dense_one_row(x, weight, w) && residual_fits(residual, x, w.rows)) {
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous();
    at::Tensor y = at::empty(residual.sizes(), residual.options());
    if (cuda::gemv_add_residual(w, /*dense=*/true, xc.data_ptr(), residual.data_ptr(), y.data_ptr(), dtype_of(x),
                                stream_of(x)))
      return y;
  }
#else
  (void)x, (void)weight, (void)residual;
#endif
  return {};
}

at::Tensor linear_inference(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  static const bool enabled = !switched_off("HYFT_DENSE_GEMV");
  if (enabled) {
    const at::Tensor y = linear_inference_kernel(x, weight);
    if (y.defined()) return bias.defined() ? y + bias : y;
  }
  return at::linear(x, weight, bias);
}

}  // namespace hyft::kernels
