// hyft_kernels_check: hyft's CUDA kernels (kernels/*.cu, through kernels/fused_ops.h)
// against their ATen references, and their speed.
//
//   hyft_kernels_check --check
//     SwiGLU and RoPE (forward and backward, by autograd), the per-row cross-entropy
//     and the fused linear cross-entropy (bf16 autocast) on random inputs of many
//     shapes (odd sizes, misaligned views, GQA-like head counts, vocabularies of
//     real models) in fp32, bf16 and fp16, against the references computed in
//     float64 from the same rounded inputs. Error = max |fast - ref| / max |ref|;
//     bounds: fp32 1e-5, bf16 1.6e-2, fp16 2e-3 (one rounding of the output), the
//     fused linear cross-entropy 2e-2 (bf16 matmuls). The inference kernels: RMSNorm
//     and residual add + RMSNorm against float64 (the add itself exactly as ATen's),
//     the slot-cache write exactly as index_put_, a decoding step's RoPE + cache write
//     in one kernel against both references, the slots' attention against SDPA
//     with the dense rule mask in float64 (plain causal and hybrid, GQA, keys off
//     the 64-key chunk), SwiGLU over one (rows, 2F) gate/up output. Fused q/k/v
//     projections (model/fused_projections.h, one GEMM or one GEMV over stacked
//     codes) against each projection alone. The single-row GEMVs that end in
//     SwiGLU or in RoPE and the cache write (with and without the layer's RMSNorm
//     on the way in), or in the residual add, against float64 (the last also
//     against the GEMV then the add, bit for bit); a whole decoding step of one
//     stream (every one of them) against the same stream in a two-row step; the
//     greedy argmax against at::argmax, index for index. The quantized weights
//     (quant/formats.h, NF4 with and without double-quantized scales, INT8, INT4):
//     the dequantize kernel equal to the ATen
//     reference bit for bit (bound 0), and the dequantizing GEMV for 1-8 rows
//     against the reference's dense weight through a float64 matmul (bounds as
//     above; fp32 1e-5 scaled by the sum length). The allocator's free blocks are
//     filled with NaN before each fused call, so an unwritten output fails.
//     Exits 1 on any failure, 77 without CUDA or without the kernels.
//   hyft_kernels_check --bench
//     each kernel against its reference on the 1.3b shape (16 x 2048 tokens):
//     milliseconds and GB/s (bytes each must read and write once, over the time);
//     then the dequantizing GEMV on the 8b shape's projections against a bf16
//     matmul (cuBLAS) and the dequantize-then-matmul path; the slots' attention
//     against its reference, in CUDA graphs.
#include "kernels/fused_ops.h"
#include "kernels/linear_cross_entropy.h"
#include "model/llama.h"
#include "quant/quantized_linear.h"
#include "train/autocast.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/cuda.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace k = hyft::kernels;

namespace {

int failures = 0, checks = 0;

const char* name_of(at::ScalarType t) {
  return t == at::kFloat ? "fp32" : t == at::kBFloat16 ? "bf16" : "fp16";
}
double bound_of(at::ScalarType t) { return t == at::kFloat ? 1e-5 : t == at::kBFloat16 ? 1.6e-2 : 2e-3; }

double rel_err(const at::Tensor& a, const at::Tensor& ref) {
  if (!a.defined() || a.isnan().any().item<bool>()) return std::numeric_limits<double>::infinity();
  const double scale = std::max(1e-6, ref.abs().max().item<double>());
  return (a.to(at::kDouble) - ref.to(at::kDouble)).abs().max().item<double>() / scale;
}

void report(const std::string& what, double err, double bound) {
  ++checks;
  const bool ok = err <= bound;
  if (!ok) ++failures;
  std::printf("%-4s %-64s err %.2e (bound %.0e)\n", ok ? "ok" : "FAIL", what.c_str(), err, bound);
}

// Fills the caching allocator's free memory with NaN: an output the kernel fails to
// write then shows as NaN instead of an earlier run's right answer.
void poison_free_memory(int64_t bytes) { at::full({bytes / 4 + 1024}, NAN, at::TensorOptions(at::kCUDA)); }

// A CUDA tensor of `shape` in `dtype`, N(0, 1) * scale; with `offset`, a view one
// element into a larger buffer (not 16-byte aligned: the kernels' scalar path).
at::Tensor make(at::IntArrayRef shape, at::ScalarType dtype, bool offset = false, double scale = 1.0) {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  at::Tensor buf = (at::randn({n + 1}, at::kCUDA) * scale).to(dtype);
  return buf.narrow(0, offset ? 1 : 0, n).view(shape);
}

void check_swiglu(at::IntArrayRef shape, at::ScalarType dtype, bool offset) {
  const at::Tensor g0 = make(shape, dtype, offset, 3.0), u0 = make(shape, dtype, offset);
  const at::Tensor dout = make(shape, dtype);
  // Clones: the backward pass writes the gradients over the saved inputs.
  at::Tensor g = g0.clone().requires_grad_(true), u = u0.clone().requires_grad_(true);
  poison_free_memory(8 * g0.numel() * 4);
  const at::Tensor out = k::swiglu(g, u);
  out.backward(dout);
  at::Tensor gr = g0.to(at::kDouble).requires_grad_(true), ur = u0.to(at::kDouble).requires_grad_(true);
  const at::Tensor ref = k::swiglu_reference(gr, ur);
  ref.backward(dout.to(at::kDouble));
  const std::string what = std::string("swiglu ") + name_of(dtype) + " " + std::to_string(g0.numel()) +
                           (offset ? " misaligned" : "");
  const double b = bound_of(dtype);
  report(what + " forward", rel_err(out, ref), b);
  report(what + " d_gate", rel_err(g.grad(), gr.grad()), b);
  report(what + " d_up", rel_err(u.grad(), ur.grad()), b);
}

// y = [gate | up] (rows, 2F), the fused gate/up output; the gradient comes back in y's layout.
void check_swiglu_packed(int64_t rows, int64_t F, at::ScalarType dtype) {
  const at::Tensor y0 = make({rows, 2 * F}, dtype, false, 3.0), dout = make({rows, F}, dtype);
  at::Tensor y = y0.clone().requires_grad_(true);
  poison_free_memory(8 * y0.numel() * 4);
  const at::Tensor out = k::swiglu_packed(y * 1);  // y * 1: the backward pass writes over its input
  out.backward(dout);
  at::Tensor yr = y0.to(at::kDouble).requires_grad_(true);
  const at::Tensor ref = k::swiglu_packed_reference(yr);
  ref.backward(dout.to(at::kDouble));
  const std::string what = std::string("swiglu_packed ") + name_of(dtype) + " " + std::to_string(rows) + "x" +
                           std::to_string(F);
  report(what + " forward", rel_err(out, ref), bound_of(dtype));
  report(what + " backward", rel_err(y.grad(), yr.grad()), bound_of(dtype));
}

// strided: x a column slice of wider rows (q or k read in place from the fused q/k/v output).
void check_rotary(int64_t B, int64_t T, int64_t H, int64_t Dh, at::ScalarType dtype, bool strided = false) {
  const at::Tensor x0 = strided ? make({B, T, (H + 3) * Dh}, dtype).narrow(-1, Dh, H * Dh).view({B, T, H, Dh})
                                : make({B, T, H, Dh}, dtype);
  const at::Tensor angle = at::rand({B, T, Dh / 2}, at::kCUDA) * 100.0;
  const at::Tensor cos = at::cat({angle.cos(), angle.cos()}, -1).to(dtype);
  const at::Tensor sin = at::cat({angle.sin(), angle.sin()}, -1).to(dtype);
  const at::Tensor dout = make({B, T, H, Dh}, dtype);
  at::Tensor x = x0.detach().requires_grad_(true);
  poison_free_memory(8 * x0.numel() * 4);
  const at::Tensor out = k::rotary(x, cos, sin);
  out.backward(dout);
  at::Tensor xr = x0.to(at::kDouble).requires_grad_(true);
  const at::Tensor ref = k::rotary_reference(xr, cos.to(at::kDouble), sin.to(at::kDouble));
  ref.backward(dout.to(at::kDouble));
  char what[128];
  std::snprintf(what, sizeof what, "rotary %s B%lld T%lld H%lld Dh%lld%s", name_of(dtype), (long long)B,
                (long long)T, (long long)H, (long long)Dh, strided ? " strided" : "");
  report(std::string(what) + " forward", rel_err(out, ref), bound_of(dtype));
  report(std::string(what) + " backward", rel_err(x.grad(), xr.grad()), bound_of(dtype));
}

void check_cross_entropy(int64_t n, int64_t V, at::ScalarType dtype) {
  const at::Tensor x0 = make({n, V}, dtype, false, 4.0);
  const at::Tensor y = at::randint(0, V, {n}, at::TensorOptions(at::kLong).device(at::kCUDA));
  at::Tensor xr = x0.to(at::kDouble).requires_grad_(true);
  const at::Tensor ref = at::cross_entropy_loss(xr, y, {}, at::Reduction::None);
  ref.sum().backward();
  at::Tensor logits = x0.clone();
  const at::Tensor loss = k::cross_entropy_rows_(logits, y);
  char what[128];
  std::snprintf(what, sizeof what, "cross_entropy_rows %s n%lld V%lld", name_of(dtype), (long long)n, (long long)V);
  report(std::string(what) + " loss", rel_err(loss, ref), dtype == at::kFloat ? 1e-5 : 1e-3);
  report(std::string(what) + " gradient", rel_err(logits, xr.grad()), bound_of(dtype));
}

void check_linear_cross_entropy(int64_t N, int64_t D, int64_t V, bool train_weight) {
  const at::Tensor h0 = make({N, D}, at::kBFloat16), w0 = make({V, D}, at::kBFloat16, false, 0.05);
  const at::Tensor y = at::randint(0, V, {N}, at::TensorOptions(at::kLong).device(at::kCUDA));
  at::Tensor h = h0.detach().requires_grad_(true), w = w0.detach().requires_grad_(train_weight);
  at::Tensor loss;
  {
    hyft::train::AutocastGuard autocast(c10::DeviceType::CUDA, at::kBFloat16);
    loss = k::linear_cross_entropy_sum(h, w, y, 1000);
  }
  (loss * 0.25).backward();
  at::Tensor hr = h0.to(at::kDouble).requires_grad_(true), wr = w0.to(at::kDouble).requires_grad_(true);
  const at::Tensor ref = at::cross_entropy_loss(at::linear(hr, wr), y, {}, at::Reduction::Sum);
  (ref * 0.25).backward();
  char what[128];
  std::snprintf(what, sizeof what, "linear_cross_entropy bf16 N%lld D%lld V%lld%s", (long long)N, (long long)D,
                (long long)V, train_weight ? " +W" : "");
  report(std::string(what) + " loss", rel_err(loss, ref), 2e-3);
  report(std::string(what) + " d_h", rel_err(h.grad(), hr.grad()), 2e-2);
  if (train_weight) report(std::string(what) + " d_W", rel_err(w.grad(), wr.grad()), 2e-2);
}

// --- inference kernels: RMSNorm (alone and after the residual add), the slot cache ---
void check_rms_norm(int64_t rows, int64_t D, at::ScalarType dtype) {
  at::NoGradGuard no_grad;
  const auto opts = at::TensorOptions(at::kCUDA).dtype(dtype);
  const at::Tensor x = at::randn({rows, D}, opts), d = at::randn({rows, D}, opts), w = at::rand({D}, opts) + 0.5;
  poison_free_memory(rows * D * 16);
  const at::Tensor y = k::rms_norm_inference(x, w, 1e-6);
  const auto [h, y2] = k::add_rms_norm_inference(x, d, w, 1e-6);
  const at::Tensor href = x + d;  // in dtype, as the model adds
  auto ref = [&](const at::Tensor& t) {
    const at::Tensor f = t.to(at::kDouble);
    return f * at::rsqrt(f.pow(2).mean(-1, true) + 1e-6) * w.to(at::kDouble);
  };
  const std::string what = std::to_string(rows) + "x" + std::to_string(D) + " " + name_of(dtype);
  report("rms_norm " + what, rel_err(y, ref(x)), bound_of(dtype));
  report("add_rms_norm h " + what, rel_err(h, href), 0.0);
  report("add_rms_norm y " + what, rel_err(y2, ref(href)), bound_of(dtype));
}

// The greedy choice against at::argmax, index for index: random rows, rows of few
// distinct values (ties: the first wins), a row with NaN (it wins, the first NaN), a
// row of -inf (index 0); aligned and not (a view one element in). err: mismatches.
void check_argmax_rows(int64_t rows, int64_t V, at::ScalarType dtype, bool offset) {
  at::NoGradGuard no_grad;
  at::Tensor x = make({rows, V}, dtype, offset, 3.0);
  if (rows >= 4) {
    x[1].copy_(at::round(x[1] / 3.0));  // a few levels: many ties
    x[2].index_put_({at::tensor({V / 2, V / 3, V - 1})}, at::tensor(NAN).to(x.options()));
    x[3].fill_(-INFINITY);
  }
  poison_free_memory(rows * 64);
  const at::Tensor got = k::argmax_rows(x), want = x.argmax(1);
  const std::string what = "argmax_rows " + std::to_string(rows) + "x" + std::to_string(V) + " " + name_of(dtype) +
                           (offset ? " unaligned" : "");
  report(what, got.ne(want).sum().item<double>(), 0.0);
}

// v strided: a column slice of wider rows, as the fused q/k/v output gives it.
void check_slot_cache_write(int64_t B, int64_t S, int64_t Tmax, int64_t Hkv, int64_t Dh, at::ScalarType dtype) {
  at::NoGradGuard no_grad;
  const auto opts = at::TensorOptions(at::kCUDA).dtype(dtype);
  at::Tensor kc = at::randn({S, Tmax, Hkv, Dh}, opts), vc = at::randn({S, Tmax, Hkv, Dh}, opts);
  at::Tensor kr = kc.clone(), vr = vc.clone();
  const at::Tensor k = at::randn({B, Hkv, Dh}, opts);
  const at::Tensor v = at::randn({B, (Hkv + 5) * Dh}, opts).narrow(1, 4 * Dh, Hkv * Dh).view({B, Hkv, Dh});
  const at::Tensor pos = at::randint(0, Tmax, {B}, at::TensorOptions(at::kCUDA).dtype(at::kLong));
  k::slot_cache_write_(kc, vc, k, v, pos);
  k::slot_cache_write_reference_(kr, vr, k, v, pos);
  const double diff = std::max((kc.to(at::kDouble) - kr.to(at::kDouble)).abs().max().item<double>(),
                               (vc.to(at::kDouble) - vr.to(at::kDouble)).abs().max().item<double>());
  report("slot_cache_write B" + std::to_string(B) + " Hkv" + std::to_string(Hkv) + " Dh" + std::to_string(Dh) + " " +
             name_of(dtype),
         diff, 0.0);
}

// A decoding step's RoPE and cache write in one kernel against rotary's and the cache
// write's references; q, k and v column slices of one (B, 1, (H + 2 Hkv) Dh) row, as the
// fused q/k/v output gives them, or separate tensors.
void check_rotary_slot_write(int64_t B, int64_t S, int64_t Tmax, int64_t H, int64_t Hkv, int64_t Dh,
                             at::ScalarType dtype, bool fused) {
  at::NoGradGuard no_grad;
  const auto opts = at::TensorOptions(at::kCUDA).dtype(dtype);
  at::Tensor q, k, v;
  if (fused) {
    const at::Tensor row = at::randn({B, 1, (H + 2 * Hkv) * Dh}, opts);
    q = row.narrow(2, 0, H * Dh).view({B, 1, H, Dh});
    k = row.narrow(2, H * Dh, Hkv * Dh).view({B, 1, Hkv, Dh});
    v = row.narrow(2, (H + Hkv) * Dh, Hkv * Dh).view({B, 1, Hkv, Dh});
  } else {
    q = at::randn({B, 1, H, Dh}, opts);
    k = at::randn({B, 1, Hkv, Dh}, opts);
    v = at::randn({B, 1, Hkv, Dh}, opts);
  }
  const at::Tensor angle = at::rand({B, 1, Dh / 2}, at::kCUDA) * 100.0;
  const at::Tensor cos = at::cat({angle.cos(), angle.cos()}, -1).to(dtype);
  const at::Tensor sin = at::cat({angle.sin(), angle.sin()}, -1).to(dtype);
  at::Tensor kc = at::randn({S, Tmax, Hkv, Dh}, opts), vc = at::randn({S, Tmax, Hkv, Dh}, opts);
  at::Tensor kr = kc.to(at::kDouble), vr = vc.to(at::kDouble);
  const at::Tensor pos = at::randperm(Tmax, at::TensorOptions(at::kCUDA).dtype(at::kLong)).narrow(0, 0, B);
  poison_free_memory(int64_t(B) * H * Dh * 16);
  const at::Tensor out = k::rotary_slot_write_(q, k, v, cos, sin, kc, vc, pos);
  const at::Tensor ref = k::rotary_slot_write_reference_(q.to(at::kDouble), k.to(at::kDouble), v.to(at::kDouble),
                                                         cos.to(at::kDouble), sin.to(at::kDouble), kr, vr, pos);
  char what[160];
  std::snprintf(what, sizeof what, "rotary_slot_write %s B%lld H%lld/%lld Dh%lld%s", name_of(dtype), (long long)B,
                (long long)H, (long long)Hkv, (long long)Dh, fused ? " fused row" : "");
  report(std::string(what) + " q", rel_err(out, ref), bound_of(dtype));
  report(std::string(what) + " k cache", rel_err(kc, kr), bound_of(dtype));
  report(std::string(what) + " v cache", rel_err(vc, vr), 0.0);
}

// A decoding step's attention over the slots: rows at random positions below `keys`,
// the hybrid rule (window W, ratio r) or plain causal, GQA; against the reference
// (SDPA over the first `keys` keys with the dense rule mask) in float64.
void check_slot_attention(int64_t B, int64_t Tmax, int64_t keys, int64_t H, int64_t Hkv, int64_t Dh, int64_t W,
                          double r, at::ScalarType dtype) {
  at::NoGradGuard no_grad;
  const auto opts = at::TensorOptions(at::kCUDA).dtype(dtype);
  const at::Tensor kc = at::randn({B + 2, Tmax, Hkv, Dh}, opts), vc = at::randn({B + 2, Tmax, Hkv, Dh}, opts);
  const at::Tensor q = at::randn({B, 1, H, Dh}, opts) * 2;
  at::Tensor pos = at::randint(0, keys, {B}, at::TensorOptions(at::kCUDA).dtype(at::kLong));
  pos[0] = keys - 1;  // one row at the bucket's end
  hyft::attention::HybridSettings rule;
  rule.window_size = W;
  rule.global_ratio = r;
  poison_free_memory(int64_t(B) * H * (Dh + 2) * 4 * 64);
  const at::Tensor fast = k::slot_attention_kernel(q, kc, vc, pos, keys, rule);
  const at::Tensor ref = k::slot_attention_reference(q.to(at::kDouble), kc.to(at::kDouble), vc.to(at::kDouble), pos,
                                                     keys, rule);
  char what[160];
  std::snprintf(what, sizeof what, "slot_attention %s B%lld keys%lld H%lld/%lld Dh%lld W%lld r%.2f", name_of(dtype),
                (long long)B, (long long)keys, (long long)H, (long long)Hkv, (long long)Dh, (long long)W, r);
  report(what, rel_err(fast, ref), bound_of(dtype));
}

// --- quantized weights -------------------------------------------------------
namespace q = hyft::quant;

void check_dequantize(q::Format format, int64_t rows, int64_t cols, at::ScalarType dtype) {
  const at::Tensor w = (at::randn({rows, cols}, at::TensorOptions(at::kCUDA)) * 0.05).to(dtype);
  const q::QuantizedWeight qw = q::QuantizedWeight::from(w, format);
  poison_free_memory(int64_t(rows * cols) * 4);
  const at::Tensor fast = qw.dequantize(), ref = qw.dequantize_reference();
  const double diff = fast.isnan().any().item<bool>() ? INFINITY
                                                      : (fast.to(at::kDouble) - ref.to(at::kDouble)).abs().max().item<double>();
  report(std::string("dequantize ") + q::format_name(format) + " " + std::to_string(rows) + "x" +
             std::to_string(cols) + " " + name_of(dtype),
         diff, 0.0);
}

void check_gemv(q::Format format, int64_t m, int64_t rows, int64_t cols, at::ScalarType dtype) {
  const auto opts = at::TensorOptions(at::kCUDA);
  const at::Tensor w = (at::randn({rows, cols}, opts) * 0.05).to(dtype);
  const q::QuantizedWeight qw = q::QuantizedWeight::from(w, format);
  const at::Tensor x = at::randn({m, cols}, opts).to(dtype);
  poison_free_memory(int64_t(m * rows) * 4 + (1 << 20));
  const at::Tensor fast = q::quantized_gemv(x, qw);
  const at::Tensor ref = at::matmul(x.to(at::kDouble), qw.dequantize_reference().to(at::kDouble).t());
  const std::string what = std::string("gemv ") + q::format_name(format) + " m" + std::to_string(m) + " " +
                           std::to_string(rows) + "x" + std::to_string(cols) + " " + name_of(dtype);
  if (!fast.defined()) {
    report(what + " (kernel refused the layout)", INFINITY, 0.0);
    return;
  }
  // fp32: float32 sums of `cols` terms against float64.
  const double bound = dtype == at::kFloat ? 1e-5 * std::sqrt(double(cols) / 64.0) : bound_of(dtype);
  report(what, rel_err(fast, ref), bound);
}

// A decoding stream's dense projection: the single-row GEMV (W in T) against float64.
void check_dense_gemv(int64_t rows, int64_t cols, at::ScalarType dtype) {
  at::NoGradGuard no_grad;
  const auto opts = at::TensorOptions(at::kCUDA);
  const at::Tensor w = (at::randn({rows, cols}, opts) * 0.05).to(dtype), x = at::randn({1, cols}, opts).to(dtype);
  poison_free_memory(rows * 4 + (1 << 20));
  const at::Tensor fast = k::linear_inference_kernel(x, w);
  const at::Tensor ref = at::matmul(x.to(at::kDouble), w.to(at::kDouble).t());
  const std::string what = "dense_gemv " + std::to_string(rows) + "x" + std::to_string(cols) + " " + name_of(dtype);
  if (!fast.defined()) {
    report(what + " (kernel refused the layout)", INFINITY, 0.0);
    return;
  }
  const double bound = dtype == at::kFloat ? 1e-5 * std::sqrt(double(cols) / 64.0) : bound_of(dtype);
  report(what, rel_err(fast, ref), bound);
}

// The gate/up GEMV ending in SwiGLU (one row; W = [W_gate; W_up], dense or quantized)
// against float64: silu(x W_gate^T) * (x W_up^T) over the reference weight.
// With `norm`, x is the residual stream and the GEMV applies an RMSNorm to it first
// (kernels::InputNorm): the reference is x normalised in float64, rounded once to x's
// dtype as at::rms_norm rounds its output.
at::Tensor normed_reference(const at::Tensor& x, const k::InputNorm& n) {
  const at::Tensor x64 = x.to(at::kDouble);
  if (!n.weight.defined()) return x64;
  const at::Tensor y = x64 * at::rsqrt(x64.pow(2).mean(-1, true) + n.eps) * n.weight.to(at::kDouble);
  return y.to(x.scalar_type()).to(at::kDouble);
}

k::InputNorm random_norm(bool norm, int64_t cols, at::ScalarType dtype) {
  if (!norm) return {};
  return {(at::rand({cols}, at::TensorOptions(at::kCUDA)) + 0.5).to(dtype), 1e-6};
}

void check_gemv_swiglu(q::Format format, int64_t F, int64_t cols, at::ScalarType dtype, bool norm = false) {
  at::NoGradGuard no_grad;
  const auto opts = at::TensorOptions(at::kCUDA);
  const at::Tensor w = (at::randn({2 * F, cols}, opts) * 0.05).to(dtype), x = at::randn({1, cols}, opts).to(dtype);
  const bool dense = format == q::Format::None;
  const q::QuantizedWeight qw = dense ? q::QuantizedWeight{} : q::QuantizedWeight::from(w, format);
  const k::InputNorm n = random_norm(norm, cols, dtype);
  poison_free_memory(F * 4 + (1 << 20));
  const at::Tensor fast = dense ? k::linear_swiglu_inference(x, w, n) : q::quantized_gemv_swiglu(x, qw, n);
  const at::Tensor W = dense ? w : qw.dequantize_reference();
  const at::Tensor ref = k::swiglu_packed_reference(at::matmul(normed_reference(x, n), W.to(at::kDouble).t()));
  const std::string what = std::string("gemv_swiglu ") + (norm ? "norm " : "") +
                           (dense ? "dense" : q::format_name(format)) + " " + std::to_string(2 * F) + "x" +
                           std::to_string(cols) + " " + name_of(dtype);
  if (norm && format == q::Format::Int4) {  // no norm for INT4 (its registers): the caller's path runs
    report(what + " declined", fast.defined() ? INFINITY : 0.0, 0.0);
    return;
  }
  if (!fast.defined()) {
    report(what + " (kernel refused the layout)", INFINITY, 0.0);
    return;
  }
  report(what, rel_err(fast, ref), bound_of(dtype));
  if (norm) {  // what rms_norm's kernel writes, then the GEMV: bit for bit
    const at::Tensor normed = k::rms_norm_inference(x, n.weight, n.eps);
    const at::Tensor apart = dense ? k::linear_swiglu_inference(normed, w) : q::quantized_gemv_swiglu(normed, qw);
    report(what + " = norm kernel, GEMV", apart.defined() ? rel_err(fast, apart) : INFINITY, 0.0);
  }
}

// A decoding stream's q/k/v GEMV ending in RoPE and the cache write (W = [W_q; W_k;
// W_v], dense or quantized, one row of x) against float64: x W^T split into q, k, v,
// then rotary_slot_write_'s reference into a copy of the caches. The rest of the
// caches must stay as they were.
void check_gemv_rotary(q::Format format, int64_t H, int64_t Hkv, int64_t Dh, int64_t D, at::ScalarType dtype,
                       bool norm = false) {
  at::NoGradGuard no_grad;
  const auto opts = at::TensorOptions(at::kCUDA).dtype(dtype);
  const int64_t rows = (H + 2 * Hkv) * Dh, Tmax = 40;
  const at::Tensor w = at::randn({rows, D}, opts) * 0.05, x = at::randn({1, 1, D}, opts);
  const bool dense = format == q::Format::None;
  const q::QuantizedWeight qw = dense ? q::QuantizedWeight{} : q::QuantizedWeight::from(w, format);
  const at::Tensor angle = at::rand({1, 1, Dh / 2}, at::kCUDA) * 100.0;
  const at::Tensor cos = at::cat({angle.cos(), angle.cos()}, -1).to(dtype);
  const at::Tensor sin = at::cat({angle.sin(), angle.sin()}, -1).to(dtype);
  at::Tensor kc = at::randn({2, Tmax, Hkv, Dh}, opts), vc = at::randn({2, Tmax, Hkv, Dh}, opts);
  at::Tensor kr = kc.to(at::kDouble), vr = vc.to(at::kDouble);
  const at::Tensor pos = at::full({1}, 29, at::TensorOptions(at::kCUDA).dtype(at::kLong));
  poison_free_memory(rows * 16 + (1 << 20));
  const k::SlotWrite target{cos, sin, kc, vc, pos, H, Hkv};
  const k::InputNorm n = random_norm(norm, D, dtype);
  const at::Tensor out =
      dense ? k::linear_rotary_slot_write(x, w, target, n) : q::quantized_gemv_rotary_slot_write(x, qw, target, n);
  const at::Tensor W = (dense ? w : qw.dequantize_reference()).to(at::kDouble);
  const at::Tensor y = at::matmul(normed_reference(x, n), W.t());  // (1, 1, rows)
  const at::Tensor ref = k::rotary_slot_write_reference_(
      y.narrow(2, 0, H * Dh).view({1, 1, H, Dh}), y.narrow(2, H * Dh, Hkv * Dh).view({1, 1, Hkv, Dh}),
      y.narrow(2, (H + Hkv) * Dh, Hkv * Dh).view({1, 1, Hkv, Dh}), cos.to(at::kDouble), sin.to(at::kDouble), kr, vr,
      pos);
  char what[160];
  std::snprintf(what, sizeof what, "gemv_rotary %s%s H%lld/%lld Dh%lld D%lld %s", norm ? "norm " : "",
                dense ? "dense" : q::format_name(format), (long long)H, (long long)Hkv, (long long)Dh, (long long)D,
                name_of(dtype));
  if (norm && format == q::Format::Int4) {  // no norm for INT4 (its registers): the caller's path runs
    report(std::string(what) + " declined", out.defined() ? INFINITY : 0.0, 0.0);
    return;
  }
  if (!out.defined()) {
    report(std::string(what) + " (kernel refused the layout)", INFINITY, 0.0);
    return;
  }
  report(std::string(what) + " q", rel_err(out, ref), bound_of(dtype));
  report(std::string(what) + " k cache", rel_err(kc, kr), bound_of(dtype));
  report(std::string(what) + " v cache", rel_err(vc, vr), bound_of(dtype));
}

// A decoder layer's o or down projection onto the residual stream (one row, W dense
// or quantized; kernels::linear_add_residual): against float64, and against the
// same GEMV then the add in T, bit for bit (INT4 within the bound: its plain GEMV is
// the tensor-core kernel).
void check_gemv_add_residual(q::Format format, int64_t D, int64_t in, at::ScalarType dtype) {
  at::NoGradGuard no_grad;
  const auto opts = at::TensorOptions(at::kCUDA).dtype(dtype);
  const at::Tensor w = at::randn({D, in}, opts) * 0.05, x = at::randn({1, 1, in}, opts);
  const at::Tensor residual = at::randn({1, 1, D}, opts);
  const bool dense = format == q::Format::None;
  const q::QuantizedWeight qw = dense ? q::QuantizedWeight{} : q::QuantizedWeight::from(w, format);
  poison_free_memory(D * 16 + (1 << 20));
  const at::Tensor h =
      dense ? k::linear_add_residual(x, w, residual) : q::quantized_gemv_add_residual(x, qw, residual);
  char what[160];
  std::snprintf(what, sizeof what, "gemv_add_residual %s %lldx%lld %s", dense ? "dense" : q::format_name(format),
                (long long)D, (long long)in, name_of(dtype));
  if (!h.defined()) {
    report(std::string(what) + " (kernel refused the layout)", INFINITY, 0.0);
    return;
  }
  const at::Tensor W = (dense ? w : qw.dequantize_reference()).to(at::kDouble);
  report(what, rel_err(h, residual.to(at::kDouble) + at::matmul(x.to(at::kDouble), W.t())), bound_of(dtype));
  const at::Tensor y =
      dense ? k::linear_inference_kernel(x, w) : q::quantized_gemv(x.view({1, in}), qw).view({1, 1, D});
  report(std::string(what) + " = GEMV + add", rel_err(h, residual + y),
         format == q::Format::Int4 ? bound_of(dtype) : 0.0);
}

// A whole decoding step through the model (a random 3-layer model, dense or
// quantized, bf16, GQA): one stream, where the q/k/v and gate/up GEMVs apply the
// norms and the o and down GEMVs add onto the residual stream (no norm kernels), and
// the same stream as row 0 of a two-row step (no single-row kernels: the norm kernels
// and the plain GEMMs), each against a float32 twin of the model (the quantized
// weights dequantized) on the same cache.
void check_decode_step(q::Format format) {
  at::NoGradGuard no_grad;
  namespace m = hyft::model;
  m::LlamaConfig c;
  c.vocab_size = 1000;
  c.hidden_size = 512;
  c.intermediate_size = 1408;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  m::LlamaForCausalLM model(c, at::TensorOptions(at::kCUDA).dtype(at::kBFloat16));
  m::LlamaForCausalLM twin(c, at::TensorOptions(at::kCUDA).dtype(at::kFloat));
  m::init_random_weights(*model, 0.05);
  for (auto& layer : model->model->layer_list) {  // norms other than 1, so that they count
    layer->input_layernorm->weight.uniform_(0.5, 1.5);
    layer->post_attention_layernorm->weight.uniform_(0.5, 1.5);
  }
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  for (auto& p : twin->parameters()) p.set_requires_grad(false);
  for (size_t l = 0; l < model->model->layer_list.size(); ++l) {
    auto& from = *model->model->layer_list[l];
    auto& to = *twin->model->layer_list[l];
    auto each = [&](auto& from_block, auto& to_block, std::initializer_list<const char*> names) {
      for (const char* n : names) {
        auto p = std::dynamic_pointer_cast<m::Projection>(from_block.projection(n));
        p->quantize(format);
        std::dynamic_pointer_cast<m::Projection>(to_block.projection(n))->weight.copy_(p->dense_weight());
      }
    };
    each(*from.self_attn, *to.self_attn, {"q_proj", "k_proj", "v_proj", "o_proj"});
    each(*from.mlp, *to.mlp, {"gate_proj", "up_proj", "down_proj"});
    to.input_layernorm->weight.copy_(from.input_layernorm->weight);
    to.post_attention_layernorm->weight.copy_(from.post_attention_layernorm->weight);
  }
  twin->model->embed_tokens->weight.copy_(model->model->embed_tokens->weight);
  twin->model->norm->weight.copy_(model->model->norm->weight);
  std::dynamic_pointer_cast<m::Projection>(twin->lm_head)
      ->weight.copy_(std::dynamic_pointer_cast<m::Projection>(model->lm_head)->weight);
  model->fuse_dense_projections();
  m::SlotCache cache = model->make_slot_cache(2, 64), cache32 = twin->make_slot_cache(2, 64);
  for (size_t l = 0; l < cache.k.size(); ++l) {  // slot 1 = slot 0
    cache.k[l][0].normal_();
    cache.v[l][0].normal_();
    cache.k[l][1].copy_(cache.k[l][0]);
    cache.v[l][1].copy_(cache.v[l][0]);
    cache32.k[l].copy_(cache.k[l]);
    cache32.v[l].copy_(cache.v[l]);
  }
  const auto longs = at::TensorOptions(at::kCUDA).dtype(at::kLong);
  const at::Tensor one = model->forward_slots(at::full({1, 1}, 7, longs), at::full({1}, 40, longs), cache, 48);
  const at::Tensor two = model->forward_slots(at::full({2, 1}, 7, longs), at::full({2}, 40, longs), cache, 48);
  const at::Tensor ref = twin->forward_slots(at::full({1, 1}, 7, longs), at::full({1}, 40, longs), cache32, 48);
  // Three layers of bf16 roundings (the check of one operation allows 1.6e-2): 3.2e-2;
  // and the fused path no more than 25% further from float32 than the plain one.
  const std::string what = std::string("decode step vs float32, ") + q::format_name(format);
  const double e1 = rel_err(one[0], ref[0]), e2 = rel_err(two[0], ref[0]);
  report(what + ", one stream", e1, 3.2e-2);
  report(what + ", row 0 of two (plain path)", e2, 3.2e-2);
  report(what + ", one stream / row 0 of two", e1 / std::max(e2, 1e-9), 1.25);
}

// The projection itself: a decoding step's few rows go through the GEMV, more rows
// through dequantize + matmul; both against the reference weight.
void check_quantized_linear(q::Format format, int64_t m, int64_t cols) {
  const auto opts = at::TensorOptions(at::kCUDA);
  const at::Tensor w = (at::randn({96, cols}, opts) * 0.05).to(at::kBFloat16);
  const q::QuantizedWeight qw = q::QuantizedWeight::from(w, format);
  const at::Tensor x = at::randn({1, m, cols}, opts).to(at::kBFloat16).requires_grad_(true);
  const at::Tensor y = q::quantized_linear(x, qw, {});
  const at::Tensor d = at::randn_like(y);
  y.backward(d);
  const at::Tensor W = qw.dequantize_reference().to(at::kDouble);
  const at::Tensor ref = at::matmul(x.detach().to(at::kDouble), W.t());
  const std::string what = std::string("quantized_linear ") + q::format_name(format) + " m" + std::to_string(m) +
                           " cols " + std::to_string(cols);
  report(what + " y", rel_err(y, ref), bound_of(at::kBFloat16));
  report(what + " dx", rel_err(x.grad(), at::matmul(d.to(at::kDouble), W)), bound_of(at::kBFloat16));
}

// model::FusedProjections on CUDA: q/k/v of the 8b shape (4096 -> 4096, 1024, 1024)
// as one GEMM (m > 8) or one dequantizing GEMV over stacked codes (m <= 8), against
// each projection run alone, before fusion.
void check_fused_projections(q::Format format, int64_t m) {
  at::NoGradGuard no_grad;
  const auto opts = at::TensorOptions(at::kCUDA).dtype(at::kBFloat16);
  std::vector<std::shared_ptr<hyft::model::Projection>> p;
  for (int64_t out : {4096, 1024, 1024}) {
    p.push_back(std::make_shared<hyft::model::Projection>(4096, out, false, opts));
    p.back()->weight.normal_(0.0, 0.02);
    p.back()->weight.set_requires_grad(false);
    p.back()->quantize(format);
  }
  const at::Tensor x = at::randn({1, m, 4096}, opts);
  hyft::model::FusedProjections::fuse_dense = true;  // the dense case checked too
  std::vector<at::Tensor> alone;
  for (auto& pr : p) alone.push_back(pr->forward(x));
  hyft::model::FusedProjections f;
  const auto out = f.forward(x, {p[0].get(), p[1].get(), p[2].get()});
  double err = f.fused() ? 0.0 : INFINITY;
  for (size_t i = 0; i < 3; ++i) err = std::max(err, rel_err(out.parts[i], alone[i]));
  report(std::string("fused q/k/v ") + q::format_name(format) + " m" + std::to_string(m), err,
         bound_of(at::kBFloat16));
}

// model::FusedProjections::swiglu: a decoding stream's gate/up of the 1.3b shape as
// one GEMV ending in SwiGLU, against each projection alone and kernels::swiglu.
void check_fused_swiglu(q::Format format) {
  at::NoGradGuard no_grad;
  const auto opts = at::TensorOptions(at::kCUDA).dtype(at::kBFloat16);
  std::vector<std::shared_ptr<hyft::model::Projection>> p;
  for (int i = 0; i < 2; ++i) {
    p.push_back(std::make_shared<hyft::model::Projection>(2048, 5504, false, opts));
    p.back()->weight.normal_(0.0, 0.02);
    p.back()->weight.set_requires_grad(false);
    p.back()->quantize(format);
  }
  const at::Tensor x = at::randn({1, 1, 2048}, opts);
  const at::Tensor alone = k::swiglu(p[0]->forward(x), p[1]->forward(x));
  hyft::model::FusedProjections f;
  f.dense = true;  // as decoding asks (dense bases fused too)
  const at::Tensor fused = f.swiglu(x, p[0].get(), p[1].get());
  if (format == q::Format::Nf4) {  // no epilogue kernels for NF4: the caller's path runs
    report("fused gate/up + swiglu nf4 declined", fused.defined() ? INFINITY : 0.0, 0.0);
    return;
  }
  report(std::string("fused gate/up + swiglu ") + q::format_name(format), rel_err(fused, alone),
         bound_of(at::kBFloat16));
}

// Median milliseconds of f over `reps` runs after 3 warm-up runs.
double time_ms(const std::function<void()>& f, int reps = 20) {
  for (int i = 0; i < 3; ++i) f();
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    torch::cuda::synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    torch::cuda::synchronize();
    ms.push_back(1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void bench_row(const char* what, double bytes, const std::function<void()>& fused, const std::function<void()>& ref) {
  const double a = time_ms(fused), b = time_ms(ref);
  std::printf("%-34s fused %7.3f ms %6.0f GB/s | reference %7.3f ms %6.0f GB/s | %.2fx\n", what, a, bytes / a / 1e6,
              b, bytes / b / 1e6, b / a);
}

// Microseconds of one call of f, from a CUDA graph of 20 calls replayed 10 times:
// no launch or synchronisation overhead, as inside a decoding step's graph.
double graph_us(const std::function<void()>& f) {
  auto side = c10::cuda::getStreamFromPool();
  at::cuda::CUDAGraph graph;
  {
    c10::cuda::CUDAStreamGuard guard(side);
    f();
    f();
    side.synchronize();
    graph.capture_begin();
    for (int i = 0; i < 20; ++i) f();
    graph.capture_end();
  }
  graph.replay();
  torch::cuda::synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) graph.replay();
  torch::cuda::synchronize();
  return 1e6 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 200.0;
}

void bench_gemv() {
  at::NoGradGuard no_grad;  // the inference kernels' condition
  const auto bf = at::TensorOptions(at::kBFloat16).device(at::kCUDA);
  struct Shape {
    const char* name;
    int64_t rows, cols;
  };
  for (const Shape& s : {Shape{"8b q_proj 4096x4096", 4096, 4096}, Shape{"8b gate_proj 14336x4096", 14336, 4096},
                         Shape{"8b down_proj 4096x14336", 4096, 14336}, Shape{"1.3b q_proj 2048x2048", 2048, 2048},
                         Shape{"1.3b gate_proj 5504x2048", 5504, 2048}, Shape{"1.3b down_proj 2048x5504", 2048, 5504},
                         Shape{"1.3b lm_head 32256x2048", 32256, 2048}, Shape{"8b lm_head 128256x4096", 128256, 4096}}) {
    const at::Tensor w = at::randn({s.rows, s.cols}, bf) * 0.05, x = at::randn({1, s.cols}, bf);
    const double dense_us = graph_us([&] { at::linear(x, w); });
    std::printf("gemv %-26s bf16 cuBLAS %7.1f us %6.0f GB/s\n", s.name, dense_us,
                double(w.numel()) * 2 / dense_us / 1e3);
    const double own_us = graph_us([&] { k::linear_inference_kernel(x, w); });
    std::printf("gemv %-26s bf16 kernel %7.1f us %6.0f GB/s (%.2fx cuBLAS)\n", s.name, own_us,
                double(w.numel()) * 2 / own_us / 1e3, dense_us / own_us);
    for (q::Format f : {q::Format::Int8, q::Format::Nf4, q::Format::Int4}) {
      const q::QuantizedWeight qw = q::QuantizedWeight::from(w, f);
      const double fast = graph_us([&] { q::quantized_gemv(x, qw); });
      const double deq = graph_us([&] { at::linear(x, qw.dequantize()); });
      std::printf("gemv %-26s %-4s kernel %7.1f us %6.0f GB/s (%.2fx bf16) | dequantize+matmul %7.1f us\n", s.name,
                  q::format_name(f), fast, double(qw.bytes()) / fast / 1e3, dense_us / fast, deq);
    }
  }
}

// A decoding step's attention (one query a row over the slots), in CUDA graphs.
void bench_slot_attention() {
  at::NoGradGuard no_grad;
  const auto bf = at::TensorOptions(at::kBFloat16).device(at::kCUDA);
  struct Case {
    const char* name;
    int64_t B, H, Hkv, keys;
  };
  for (const Case& c : {Case{"1.3b B1 keys 128", 1, 16, 16, 128}, Case{"1.3b B1 keys 256", 1, 16, 16, 256},
                        Case{"1.3b B1 keys 1024", 1, 16, 16, 1024}, Case{"1.3b B4 keys 256", 4, 16, 16, 256},
                        Case{"1.3b B32 keys 256", 32, 16, 16, 256}, Case{"8b B1 keys 256", 1, 32, 8, 256},
                        Case{"8b B1 keys 4096", 1, 32, 8, 4096}, Case{"8b B32 keys 1024", 32, 32, 8, 1024}}) {
    const at::Tensor kc = at::randn({c.B, c.keys, c.Hkv, 128}, bf), vc = at::randn({c.B, c.keys, c.Hkv, 128}, bf);
    const at::Tensor q = at::randn({c.B, 1, c.H, 128}, bf);
    const at::Tensor pos = at::full({c.B}, c.keys - 1, at::TensorOptions(at::kLong).device(at::kCUDA));
    const hyft::attention::HybridSettings rule;
    const double fast = graph_us([&] { k::slot_attention_kernel(q, kc, vc, pos, c.keys, rule); });
    const double ref = graph_us([&] { k::slot_attention_reference(q, kc, vc, pos, c.keys, rule); });
    const double bytes = 2.0 * c.B * c.keys * c.Hkv * 128 * 2;
    std::printf("slot_attention %-20s kernel %7.1f us %6.0f GB/s | reference (SDPA + mask) %7.1f us | %.2fx\n", c.name,
                fast, bytes / fast / 1e3, ref, ref / fast);
  }
}

void bench() {
  const auto bf = at::TensorOptions(at::kBFloat16).device(at::kCUDA);
  const int64_t N = 16 * 2048, F = 5504, H = 16, Dh = 128, V = 32256;
  {
    at::Tensor g = at::randn({N, F}, bf).requires_grad_(true), u = at::randn({N, F}, bf).requires_grad_(true);
    const at::Tensor d = at::randn({N, F}, bf);
    const double fwd = 3.0 * N * F * 2, both = fwd + 5.0 * N * F * 2 + 4.0 * N * F * 2;  // + the copies g * 1, u * 1
    bench_row("swiglu forward", fwd, [&] { k::swiglu(g.detach(), u.detach()); },
              [&] { k::swiglu_reference(g.detach(), u.detach()); });
    bench_row("swiglu forward+backward", both, [&] { k::swiglu(g * 1, u * 1).backward(d); },
              [&] { k::swiglu_reference(g * 1, u * 1).backward(d); });
  }
  {
    at::Tensor x = at::randn({16, 2048, H, Dh}, bf).requires_grad_(true);
    const at::Tensor angle = at::rand({16, 2048, Dh / 2}, at::TensorOptions(at::kCUDA));
    const at::Tensor cos = at::cat({angle.cos(), angle.cos()}, -1).to(at::kBFloat16);
    const at::Tensor sin = at::cat({angle.sin(), angle.sin()}, -1).to(at::kBFloat16);
    const at::Tensor d = at::randn({16, 2048, H, Dh}, bf);
    const double fwd = 2.0 * N * H * Dh * 2, both = 2 * fwd;
    bench_row("rotary forward", fwd, [&] { k::rotary(x.detach(), cos, sin); },
              [&] { k::rotary_reference(x.detach(), cos, sin); });
    bench_row("rotary forward+backward", both, [&] { k::rotary(x, cos, sin).backward(d); },
              [&] { k::rotary_reference(x, cos, sin).backward(d); });
  }
  {
    const int64_t n = 4096;
    const at::Tensor x = at::randn({n, V}, bf);
    const at::Tensor y = at::randint(0, V, {n}, at::TensorOptions(at::kLong).device(at::kCUDA));
    at::Tensor a = x.clone(), b = x.clone();
    bench_row("cross_entropy_rows (4096 x 32256)", 2.0 * n * V * 2, [&] { a.copy_(x); k::cross_entropy_rows_(a, y); },
              [&] { b.copy_(x); k::cross_entropy_rows_reference_(b, y); });
  }
  bench_gemv();
  bench_slot_attention();
}

}  // namespace

int main(int argc, char** argv) {
  const bool check = argc > 1 && std::strcmp(argv[1], "--check") == 0;
  const bool timing = argc > 1 && std::strcmp(argv[1], "--bench") == 0;
  if (!check && !timing) {
    std::fprintf(stderr, "usage: hyft_kernels_check --check | --bench\n");
    return 2;
  }
  if (!torch::cuda::is_available() || !k::built_with_cuda_kernels()) {
    std::printf("hyft_kernels_check: %s; skipped\n",
                k::built_with_cuda_kernels() ? "no CUDA device" : "built without hyft's CUDA kernels");
    return 77;
  }
  if (!k::fused_kernels_on(at::empty({1}, at::kCUDA))) {
    std::printf("hyft_kernels_check: HYFT_FUSED_KERNELS=0 turns the kernels off; unset it\n");
    return 2;
  }
  at::manual_seed(0);
  if (timing) {
    bench();
    return 0;
  }
  for (auto dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
    for (bool offset : {false, true}) {
      check_swiglu({16, 5504}, dtype, offset);
      check_swiglu({3, 7, 333}, dtype, offset);
      check_swiglu({1}, dtype, offset);
    }
    for (auto [B, T, H, Dh] : std::vector<std::array<int64_t, 4>>{
             {2, 64, 16, 128}, {1, 17, 4, 64}, {3, 5, 8, 96}, {2, 9, 3, 6}, {1, 1, 1, 128}, {2, 300, 32, 128}})
      check_rotary(B, T, H, Dh, dtype);
    check_rotary(2, 33, 8, 128, dtype, /*strided=*/true);
    check_rotary(1, 1, 16, 64, dtype, /*strided=*/true);
    for (auto [n, V] : std::vector<std::array<int64_t, 2>>{{1, 7}, {5, 1001}, {64, 32256}, {3, 128256}, {200, 32000}})
      check_cross_entropy(n, V, dtype);
  }
  check_linear_cross_entropy(1000, 256, 3000, false);
  check_linear_cross_entropy(2500, 128, 32256, true);
  check_linear_cross_entropy(7, 64, 1001, true);
  for (auto dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
    for (auto [rows, D] : std::vector<std::array<int64_t, 2>>{{1, 4096}, {3, 2048}, {33, 5120}, {2, 100}, {1, 8}})
      check_rms_norm(rows, D, dtype);
    for (auto [rows, V] : std::vector<std::array<int64_t, 2>>{{1, 32256}, {4, 32256}, {32, 128256}, {5, 1001}})
      for (bool offset : {false, true}) check_argmax_rows(rows, V, dtype, offset);
    check_slot_cache_write(1, 4, 64, 8, 128, dtype);
    check_slot_cache_write(5, 8, 37, 3, 6, dtype);  // a row width off the 16-byte vector
    for (bool fused : {false, true}) {
      check_rotary_slot_write(1, 4, 64, 16, 16, 128, dtype, fused);
      check_rotary_slot_write(5, 8, 40, 32, 8, 128, dtype, fused);
      check_rotary_slot_write(3, 3, 9, 4, 2, 6, dtype, fused);  // Dh 6: the scalar path
    }
  }
  for (auto dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
    check_swiglu_packed(16, 5504, dtype);
    check_swiglu_packed(7, 333, dtype);  // odd width: the scalar path
    // B, Tmax, keys, H, Hkv, Dh, W, r: plain causal, the hybrid rule, GQA 4:1 and 8:1,
    // keys not a multiple of the 64-key chunk, one key, long rows.
    for (auto [B, Tmax, keys, H, Hkv, Dh, W] : std::vector<std::array<int64_t, 7>>{
             {1, 512, 300, 16, 16, 128, 0}, {4, 256, 256, 32, 8, 128, 0}, {3, 200, 130, 8, 2, 64, 16},
             {5, 1024, 1000, 32, 8, 128, 100}, {2, 64, 1, 4, 4, 64, 0}, {2, 4096, 4096, 16, 16, 128, 512},
             {32, 300, 257, 16, 2, 128, 64}})
      for (double r : {0.0, 0.1, 0.5}) check_slot_attention(B, Tmax, keys, H, Hkv, Dh, W, r, dtype);
  }
  for (q::Format f : {q::Format::None, q::Format::Nf4, q::Format::Int8, q::Format::Int4})
    for (int64_t m : {1, 8, 40}) check_fused_projections(f, m);
  for (q::Format f : {q::Format::None, q::Format::Nf4, q::Format::Int8, q::Format::Int4}) check_fused_swiglu(f);
  for (q::Format f : {q::Format::None, q::Format::Int8, q::Format::Int4})
    for (auto dtype : {at::kBFloat16, at::kHalf}) {
      for (bool norm : {false, true}) {
        check_gemv_rotary(f, 16, 16, 128, 2048, dtype, norm);  // 1.3b
        check_gemv_rotary(f, 32, 8, 128, 4096, dtype, norm);   // 8b
        check_gemv_rotary(f, 3, 1, 36, 512, dtype, norm);      // 45 units: a last block with units past the end
      }
    }
  for (q::Format f : {q::Format::None, q::Format::Int8, q::Format::Int4})
    for (auto dtype : {at::kBFloat16, at::kHalf})
      // 1.3b and 8b MLPs; 37 outputs: a last warp with rows past the end; 1024 x 14336:
      // a row's words split between warps.
      for (auto [F, cols] : {std::pair<int64_t, int64_t>{5504, 2048}, {14336, 4096}, {37, 512}, {1024, 14336}})
        for (bool norm : {false, true}) check_gemv_swiglu(f, F, cols, dtype, norm);
  for (q::Format f : {q::Format::None, q::Format::Nf4, q::Format::Int8, q::Format::Int4})
    for (auto dtype : {at::kBFloat16, at::kHalf})
      // 1.3b's o and down, 8b's; 36 outputs: a last warp with rows past the end.
      for (auto [D, in] : {std::pair<int64_t, int64_t>{2048, 2048}, {2048, 5504}, {4096, 4096}, {4096, 14336},
                           {36, 512}})
        check_gemv_add_residual(f, D, in, dtype);
  for (q::Format f : {q::Format::None, q::Format::Nf4, q::Format::Int8, q::Format::Int4}) check_decode_step(f);
  for (auto dtype : {at::kFloat, at::kBFloat16, at::kHalf})
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{300, 2048}, {4096, 4096}, {1024, 14336}, {37, 5504},
                              {5, 24}})
      check_dense_gemv(rows, cols, dtype);
  for (q::Format f : {q::Format::Nf4, q::Format::Nf4DoubleQuant, q::Format::Int8, q::Format::Int4}) {
    for (auto dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
      check_dequantize(f, 256, 1024, dtype);
      check_dequantize(f, 3, 50, dtype);   // 150 elements: a short last block, the scalar path
      check_dequantize(f, 17, 72, dtype);  // blocks across rows
      for (int64_t m : {1, 2, 3, 5, 8}) check_gemv(f, m, 300, 2048, dtype);
      check_gemv(f, 1, 4096, 4096, dtype);
      check_gemv(f, 4, 37, 5504, dtype);  // 5504 = 43 x 128: a partial last sweep of the warp
      check_gemv(f, 1, 1024, 14336, dtype);  // one x row: a row's words split between 2-8 warps
      check_gemv(f, 1, 37, 5504, dtype);     // one x row: a last warp with rows past the end
      check_gemv(f, 3, 1024, 14336, dtype);  // INT4 bf16/fp16: the tensor-core kernel, rounds split 4 ways
      check_gemv(f, 8, 4096, 2048, dtype);   // ... every B column a row of x
      check_gemv(f, 2, 1040, 2048, dtype);   // ... a block's last tile past the end
    }
    for (int64_t m : {1, 8, 40}) check_quantized_linear(f, m, 512);
    check_quantized_linear(f, 1, 100);  // a row the GEMV refuses: dequantize + matmul
  }
  std::printf("kernels check: %d/%d passed\n", checks - failures, checks);
  return failures == 0 ? 0 : 1;
}
