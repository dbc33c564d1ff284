#include "kernels/linear_cross_entropy.h"

#include "kernels/fused_ops.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

namespace hyft::kernels {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

int64_t default_chunk_tokens(int64_t vocab) {
  return std::max<int64_t>(64, (int64_t(256) << 20) / (2 * std::max<int64_t>(vocab, 1)));
}

namespace {

at::ScalarType compute_dtype(const at::Tensor& h) {
  const auto type = h.device().type();
  return at::autocast::is_autocast_enabled(type) ? at::autocast::get_autocast_dtype(type) : h.scalar_type();
}

// Calls f(start, len, loss_rows, grad_logits) for each chunk of tokens, grad_logits
// (len, V) in the compute dtype holding softmax - onehot.
template <typename F>
void for_each_chunk(const at::Tensor& hc, const at::Tensor& wc, const at::Tensor& labels, int64_t chunk, F&& f) {
  const int64_t n = hc.size(0);
  if (chunk <= 0) chunk = default_chunk_tokens(wc.size(0));
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t len = std::min(chunk, n - start);
    at::Tensor logits = at::mm(hc.narrow(0, start, len), wc.t());  // (len, V)
    const at::Tensor loss = cross_entropy_rows_(logits, labels.narrow(0, start, len));
    f(start, len, loss, logits);
  }
}

struct LinearCrossEntropyFunction : torch::autograd::Function<LinearCrossEntropyFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& weight,
                            const at::Tensor& labels, int64_t chunk) {
    const at::ScalarType c = compute_dtype(h);
    const at::Tensor hc = h.to(c), wc = weight.to(c);
    const bool need_h = h.requires_grad(), need_w = weight.requires_grad();
    at::Tensor grad_h = need_h ? at::empty(h.sizes(), h.options()) : at::Tensor();              // (N, D)
    at::Tensor grad_w = need_w ? at::zeros(weight.sizes(), weight.options().dtype(at::kFloat))  // (V, D)
                               : at::Tensor();
    at::Tensor total = at::zeros({}, h.options().dtype(at::kFloat));
    for_each_chunk(hc, wc, labels, chunk, [&](int64_t start, int64_t len, const at::Tensor& loss, const at::Tensor& g) {
      total.add_(loss.sum());
      if (need_h) grad_h.narrow(0, start, len).copy_(at::mm(g, wc));
      if (need_w) grad_w.add_(at::mm(g.t(), hc.narrow(0, start, len)));
    });
    ctx->saved_data["grad_h"] = grad_h;
    ctx->saved_data["grad_w"] = grad_w;
    ctx->saved_data["w_dtype"] = int64_t(weight.scalar_type());
    return total;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor scale = grads[0];  // d(loss consumer) / d(total), a scalar
    at::Tensor grad_h = ctx->saved_data["grad_h"].toTensor();
    at::Tensor grad_w = ctx->saved_data["grad_w"].toTensor();
    if (grad_h.defined()) grad_h = (grad_h * scale).to(grad_h.scalar_type());
    if (grad_w.defined()) grad_w = (grad_w * scale).to(at::ScalarType(ctx->saved_data["w_dtype"].toInt()));
    return {grad_h, grad_w, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor linear_cross_entropy_sum(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& labels,
                                    int64_t chunk_tokens) {
  const bool grads = at::GradMode::is_enabled() && (h.requires_grad() || weight.requires_grad());
  if (!grads) return linear_cross_entropy_rows(h, weight, labels, chunk_tokens).sum();
  return LinearCrossEntropyFunction::apply(h, weight, labels, chunk_tokens);
}

at::Tensor linear_cross_entropy_rows(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& labels,
                                     int64_t chunk_tokens) {
  at::NoGradGuard no_grad;
  const at::ScalarType c = compute_dtype(h);
  at::Tensor out = at::empty({h.size(0)}, h.options().dtype(at::kFloat));
  for_each_chunk(h.to(c), weight.to(c), labels, chunk_tokens,
                 [&](int64_t start, int64_t len, const at::Tensor& loss, const at::Tensor&) {
                   out.narrow(0, start, len).copy_(loss);
                 });
  return out;
}

}  // namespace hyft::kernels
