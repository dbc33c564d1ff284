// The fused operations' CPU paths against PyTorch's own ops: the fused linear
// cross-entropy (chunked, gradients made in the forward pass) against at::linear +
// at::cross_entropy_loss and autograd; the per-row cross-entropy against
// at::cross_entropy_loss and the gradient autograd gives its logits; the
// references of the CUDA kernels against their textbook expressions. The CUDA
// kernels themselves are checked on the GPU (hyft_kernels_check, CTest kernels_gpu).
#include "support/catch.h"

#include "kernels/fused_ops.h"
#include "kernels/linear_cross_entropy.h"
#include "train/autocast.h"

#include <ATen/ATen.h>

#include <cstdio>

namespace {

double max_abs(const at::Tensor& a) { return a.abs().max().item<double>(); }

struct Reference {
  at::Tensor loss, grad_h, grad_w;
};

// Sum of cross-entropies of h W^T against y, by autograd through PyTorch's ops.
Reference autograd_reference(const at::Tensor& h0, const at::Tensor& w0, const at::Tensor& y, double scale) {
  at::Tensor h = h0.detach().clone().requires_grad_(true), w = w0.detach().clone().requires_grad_(true);
  at::Tensor loss = at::cross_entropy_loss(at::linear(h, w).to(at::kFloat), y, {}, at::Reduction::Sum);
  (loss * scale).backward();
  return {loss.detach(), h.grad(), w.grad()};
}

}  // namespace

TEST_CASE("fused linear cross-entropy equals linear + cross_entropy, loss and gradients", "[kernels]") {
  at::manual_seed(3);
  for (const int64_t chunk : {int64_t(1), int64_t(7), int64_t(64), int64_t(0)}) {
    const int64_t N = 37, D = 16, V = 50;
    const at::Tensor h0 = at::randn({N, D}), w0 = at::randn({V, D}) * 0.5;
    const at::Tensor y = at::randint(0, V, {N}, at::kLong);
    const double scale = 0.37;  // what the trainer's normalisation multiplies in
    const Reference ref = autograd_reference(h0, w0, y, scale);

    at::Tensor h = h0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
    at::Tensor loss = hyft::kernels::linear_cross_entropy_sum(h, w, y, chunk);
    (loss * scale).backward();
    const double dl = std::abs(loss.item<double>() - ref.loss.item<double>()) / ref.loss.item<double>();
    const double dh = max_abs(h.grad() - ref.grad_h) / max_abs(ref.grad_h);
    const double dw = max_abs(w.grad() - ref.grad_w) / max_abs(ref.grad_w);
    std::printf("fused linear CE (fp32, chunk %lld): loss rel %.2g, grad h rel %.2g, grad W rel %.2g\n",
                static_cast<long long>(chunk), dl, dh, dw);
    REQUIRE(dl < 1e-6);
    REQUIRE(dh < 1e-5);
    REQUIRE(dw < 1e-5);

    // A frozen weight gets no gradient; the hidden states' is unchanged.
    at::Tensor h2 = h0.clone().requires_grad_(true);
    hyft::kernels::linear_cross_entropy_sum(h2, w0, y, chunk).mul(scale).backward();
    REQUIRE(max_abs(h2.grad() - h.grad()) == 0.0);

    // Per-token losses without gradients.
    const at::Tensor rows = hyft::kernels::linear_cross_entropy_rows(h0, w0, y, chunk);
    const at::Tensor rows_ref = at::cross_entropy_loss(at::linear(h0, w0), y, {}, at::Reduction::None);
    REQUIRE(max_abs(rows - rows_ref) / max_abs(rows_ref) < 1e-6);
  }
}

TEST_CASE("fused linear cross-entropy under bf16 autocast follows autocast's matmul", "[kernels]") {
  at::manual_seed(4);
  const int64_t N = 40, D = 32, V = 96;
  const at::Tensor h0 = at::randn({N, D}), w0 = at::randn({V, D}) * 0.3;
  const at::Tensor y = at::randint(0, V, {N}, at::kLong);
  Reference ref;
  at::Tensor h = h0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
  at::Tensor loss;
  {
    hyft::train::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16);
    ref = autograd_reference(h0, w0, y, 1.0);
    loss = hyft::kernels::linear_cross_entropy_sum(h, w, y, 16);
  }
  loss.backward();
  const double dl = std::abs(loss.item<double>() - ref.loss.item<double>()) / ref.loss.item<double>();
  const double dh = max_abs(h.grad() - ref.grad_h) / max_abs(ref.grad_h);
  const double dw = max_abs(w.grad() - ref.grad_w) / max_abs(ref.grad_w);
  std::printf("fused linear CE (bf16 autocast): loss rel %.2g, grad h rel %.2g, grad W rel %.2g\n", dl, dh, dw);
  REQUIRE(dl < 1e-5);  // the same bf16 logits, float32 softmax on both sides
  REQUIRE(dh < 2e-2);  // bf16 gradients, rounded in a different order
  REQUIRE(dw < 2e-2);
}

TEST_CASE("per-row cross-entropy gives the loss and overwrites the logits with their gradient", "[kernels]") {
  at::manual_seed(5);
  const at::Tensor x0 = at::randn({9, 33}) * 4;
  const at::Tensor y = at::randint(0, 33, {9}, at::kLong);
  at::Tensor x = x0.clone().requires_grad_(true);
  const at::Tensor ref = at::cross_entropy_loss(x, y, {}, at::Reduction::None);
  ref.sum().backward();
  at::Tensor logits = x0.clone();
  const at::Tensor loss = hyft::kernels::cross_entropy_rows_(logits, y);
  REQUIRE(max_abs(loss - ref.detach()) < 1e-5);
  REQUIRE(max_abs(logits - x.grad()) < 1e-6);
}

TEST_CASE("kernel references: SwiGLU and rotate-half RoPE as written out by hand", "[kernels]") {
  at::manual_seed(6);
  const at::Tensor g = at::randn({4, 10}), u = at::randn({4, 10});
  REQUIRE(max_abs(hyft::kernels::swiglu(g, u) - g / (1 + at::exp(-g)) * u) < 1e-6);
  // x (B, T, H, Dh) with Dh = 4: pairs (0, 2) and (1, 3) rotate by the angles in cos/sin.
  const int64_t B = 2, T = 3, H = 2, Dh = 4;
  const at::Tensor x = at::randn({B, T, H, Dh});
  const at::Tensor angle = at::rand({B, T, Dh / 2}) * 6.28;
  const at::Tensor cos = at::cat({angle.cos(), angle.cos()}, -1), sin = at::cat({angle.sin(), angle.sin()}, -1);
  const at::Tensor out = hyft::kernels::rotary(x, cos, sin);
  for (int64_t i = 0; i < Dh / 2; ++i) {
    const at::Tensor a = x.select(-1, i), b = x.select(-1, i + Dh / 2);
    const at::Tensor c = angle.select(-1, i).cos().unsqueeze(2), s = angle.select(-1, i).sin().unsqueeze(2);
    REQUIRE(max_abs(out.select(-1, i) - (a * c - b * s)) < 1e-6);
    REQUIRE(max_abs(out.select(-1, i + Dh / 2) - (b * c + a * s)) < 1e-6);
  }
}
