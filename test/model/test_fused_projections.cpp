// model::FusedProjections: q/k/v (and gate/up) bases as one GEMM give what the
// slots give one by one (PyTorch's at::linear on each weight), with LoRA on some
// slots, for dense and quantized bases; the weights become views of one buffer
// (no second copy); a base replaced after fusion is fused again; a trainable base
// or nf4-dq is run slot by slot. The GPU side (bf16, the dequantizing GEMV over
// stacked codes) is in hyft_kernels_check.
#include "support/catch.h"

#include "adapters/lora_linear.h"
#include "kernels/fused_ops.h"
#include "model/fused_projections.h"
#include "model/llama.h"

#include <ATen/ATen.h>

#include <cstdio>

using namespace hyft;

namespace {

struct Slots {
  std::shared_ptr<model::Projection> q, k, v;     // bases (D -> 32, 8, 8)
  std::shared_ptr<adapters::LoraLinear> q_lora, v_lora;
  std::vector<model::LinearLayer*> list(bool lora) const {
    if (lora) return {q_lora.get(), k.get(), v_lora.get()};
    return {q.get(), k.get(), v.get()};
  }
};

Slots make_slots(int64_t D = 64) {
  model::FusedProjections::fuse_dense = true;  // the mechanism itself, on dense bases too
  at::manual_seed(7);
  Slots s;
  const auto opts = at::TensorOptions(at::kFloat);
  s.q = std::make_shared<model::Projection>(D, 32, false, opts);
  s.k = std::make_shared<model::Projection>(D, 8, false, opts);
  s.v = std::make_shared<model::Projection>(D, 8, false, opts);
  at::NoGradGuard no_grad;
  for (auto* p : {s.q.get(), s.k.get(), s.v.get()}) {
    p->weight.normal_(0.0, 0.2);
    p->weight.set_requires_grad(false);
  }
  s.q_lora = std::make_shared<adapters::LoraLinear>(s.q, 4, 2.0, 0.0);
  s.v_lora = std::make_shared<adapters::LoraLinear>(s.v, 4, 2.0, 0.0);
  for (auto* l : {s.q_lora.get(), s.v_lora.get()}) l->lora_B->weight.normal_(0.0, 0.2);
  return s;
}

model::FusedProjections::Output run(model::FusedProjections& f, const at::Tensor& x,
                                    const std::vector<model::LinearLayer*>& l) {
  return f.forward(x, {l[0], l[1], l[2]});
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace

TEST_CASE("fused q/k/v equal the projections one by one, with and without LoRA, and share one buffer",
          "[model][fused]") {
  for (bool lora : {false, true}) {
    Slots s = make_slots();
    const auto slots = s.list(lora);
    const at::Tensor x = at::randn({2, 5, 64});
    std::vector<at::Tensor> expected;
    for (auto* l : slots) expected.push_back(l->forward(x).detach());
    model::FusedProjections f;
    const auto out = run(f, x, slots);
    REQUIRE(f.fused());
    double worst = 0;
    for (size_t i = 0; i < 3; ++i) worst = std::max(worst, max_diff(out.parts[i], expected[i]));
    std::printf("fused q/k/v (lora %d): max |fused - one by one| = %.3g\n", int(lora), worst);
    REQUIRE(worst <= 1e-5);
    // The three weights are consecutive rows of one buffer: no copy was kept.
    const auto* base = static_cast<const char*>(s.q->weight.data_ptr());
    REQUIRE(static_cast<const char*>(s.k->weight.data_ptr()) == base + 32 * 64 * 4);
    REQUIRE(static_cast<const char*>(s.v->weight.data_ptr()) == base + 40 * 64 * 4);
    // Bare projections hand out the GEMM's whole output; LoRA on a slot does not.
    REQUIRE(out.whole.defined() == !lora);
    if (!lora) REQUIRE(at::equal(out.whole, at::cat(out.parts, -1)));
  }
}

TEST_CASE("fused q/k/v: LoRA and input gradients equal the slots' own", "[model][fused]") {
  Slots s = make_slots();
  const auto slots = s.list(true);
  const at::Tensor x0 = at::randn({3, 4, 64}), w = at::randn({3, 4, 48});
  auto grads = [&](bool fused) {
    for (auto* l : {s.q_lora.get(), s.v_lora.get()})
      for (auto& p : l->parameters()) p.mutable_grad() = at::Tensor();
    at::Tensor x = x0.clone().requires_grad_(true);
    model::FusedProjections f;
    std::vector<at::Tensor> parts;
    if (fused) parts = run(f, x, slots).parts;
    else
      for (auto* l : slots) parts.push_back(l->forward(x));
    (at::cat(parts, -1) * w).sum().backward();
    return std::vector<at::Tensor>{x.grad(), s.q_lora->lora_A->weight.grad().clone(),
                                   s.q_lora->lora_B->weight.grad().clone(), s.v_lora->lora_A->weight.grad().clone(),
                                   s.v_lora->lora_B->weight.grad().clone()};
  };
  const auto one_by_one = grads(false), fused = grads(true);
  double worst = 0;
  for (size_t i = 0; i < fused.size(); ++i) worst = std::max(worst, max_diff(fused[i], one_by_one[i]));
  std::printf("fused q/k/v gradients: max |fused - one by one| = %.3g\n", worst);
  REQUIRE(worst <= 1e-5);
}

TEST_CASE("fused projections follow a replaced weight and skip what cannot share a buffer", "[model][fused]") {
  Slots s = make_slots();
  const auto slots = s.list(false);
  const at::Tensor x = at::randn({1, 3, 64});
  model::FusedProjections f;
  run(f, x, slots);
  REQUIRE(f.fused());
  {
    at::NoGradGuard no_grad;
    s.k->weight.set_data(at::randn({8, 64}));  // as a reload would
  }
  const at::Tensor k_expected = at::linear(x, s.k->weight);
  auto out = run(f, x, slots);
  REQUIRE(f.fused());
  REQUIRE(max_diff(out.parts[1], k_expected) <= 1e-5);
  REQUIRE(static_cast<const char*>(s.k->weight.data_ptr()) ==
          static_cast<const char*>(s.q->weight.data_ptr()) + 32 * 64 * 4);
  // A trainable base (full fine-tuning) is not fused; the outputs stay right.
  s.q->weight.set_requires_grad(true);
  out = run(f, x, slots);
  REQUIRE(!f.fused());
  REQUIRE(max_diff(out.parts[0], at::linear(x, s.q->weight)) <= 1e-6);
  REQUIRE(!out.whole.defined());
}

TEST_CASE("dense bases are fused where the owner asks (decoding), not by default", "[model][fused]") {
  Slots s = make_slots();
  model::FusedProjections::fuse_dense = false;  // the default
  const auto slots = s.list(false);
  const at::Tensor x = at::randn({1, 1, 64});
  std::vector<at::Tensor> expected;
  for (auto* l : slots) expected.push_back(at::linear(x, l->base_projection()->weight).detach());
  for (bool grad : {true, false}) {  // not fused by default, with or without autograd
    at::AutoGradMode mode(grad);
    model::FusedProjections plain;
    run(plain, x, slots);
    REQUIRE(!plain.fused());
  }
  model::FusedProjections decoding;
  decoding.dense = true;
  at::NoGradGuard no_grad;
  const auto out = run(decoding, x, slots);
  REQUIRE(decoding.fused());
  double worst = 0;
  for (size_t i = 0; i < 3; ++i) worst = std::max(worst, max_diff(out.parts[i], expected[i]));
  std::printf("fused q/k/v when asked: max |fused - one by one| = %.3g\n", worst);
  REQUIRE(worst <= 1e-5);
  model::FusedProjections::fuse_dense = true;
}

TEST_CASE("fused quantized bases: stacked codes give each slot's own output; nf4-dq stays apart",
          "[model][fused][quant]") {
  for (quant::Format format : {quant::Format::Nf4, quant::Format::Int8, quant::Format::Int4,
                               quant::Format::Nf4DoubleQuant}) {
    Slots s = make_slots(128);
    for (auto* p : {s.q.get(), s.k.get(), s.v.get()}) p->quantize(format);
    const auto slots = s.list(true);
    const at::Tensor x = at::randn({2, 3, 128});
    std::vector<at::Tensor> expected;
    for (auto* l : slots) expected.push_back(l->forward(x).detach());
    const int64_t bytes = s.q->quantized->bytes() + s.k->quantized->bytes() + s.v->quantized->bytes();
    model::FusedProjections f;
    const auto out = run(f, x, slots);
    const bool stackable = format != quant::Format::Nf4DoubleQuant;
    REQUIRE(f.fused() == stackable);
    double worst = 0;
    for (size_t i = 0; i < 3; ++i) worst = std::max(worst, max_diff(out.parts[i], expected[i]));
    std::printf("fused q/k/v %s: max |fused - one by one| = %.3g\n", quant::format_name(format), worst);
    REQUIRE(worst <= 1e-5);
    // The slots' codes are views of the stacked ones: the same bytes as before.
    REQUIRE(s.q->quantized->bytes() + s.k->quantized->bytes() + s.v->quantized->bytes() == bytes);
    if (stackable) {
      const at::Tensor& q_codes = format == quant::Format::Int8   ? s.q->quantized->int8.q
                                  : format == quant::Format::Int4 ? s.q->quantized->int4.packed
                                                                  : s.q->quantized->nf4.packed;
      const at::Tensor& k_codes = format == quant::Format::Int8   ? s.k->quantized->int8.q
                                  : format == quant::Format::Int4 ? s.k->quantized->int4.packed
                                                                  : s.k->quantized->nf4.packed;
      REQUIRE(k_codes.is_alias_of(q_codes));
    }
  }
}

TEST_CASE("swiglu_packed equals silu(gate) * up of the two halves", "[model][fused]") {
  const at::Tensor y = at::randn({3, 5, 2 * 7});
  const at::Tensor expected = at::silu(y.narrow(-1, 0, 7)) * y.narrow(-1, 7, 7);
  REQUIRE(at::allclose(kernels::swiglu_packed(y), expected, 0, 0));
}
