// Parity with transformers: tiny models made by transformers itself with random
// weights (test/python/make_llama_fixtures.py) give the same logits and losses in
// hyft, for full attention, the hybrid attention rule, and bf16.
#include "support/catch.h"
#include "support/process.h"

#include "io/safetensors.h"
#include "model/load.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <sstream>

using namespace hyft;

namespace {

const char* const kConfigs[] = {"mha", "gqa_tied_linear", "mqa_dynamic", "llama3_bias_headdim",
                                "mistral_window"};

std::string fixture(const std::string& name) { return std::string(HYFT_FIXTURES) + "/llama/" + name; }

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kFloat) - b.to(at::kFloat)).abs().max().item<double>();
}

nlohmann::json reference_json(const std::string& name) {
  return nlohmann::json::parse(test::read_text(fixture(name) + "/reference.json"));
}

double relative(double a, double b) { return std::abs(a - b) / std::abs(b); }

}  // namespace

TEST_CASE("fp32 logits equal transformers' within 1e-4", "[model]") {
  for (const char* name : kConfigs) {
    io::SafetensorsFile ref(fixture(name) + "/reference.safetensors");
    auto model = model::load_pretrained(fixture(name) + "/model", {});
    at::NoGradGuard no_grad;
    // Mistral's config carries sliding_window: the expected logits are windowed.
    const at::Tensor logits = model->forward(ref.tensor("input_ids"));
    const double diff = max_abs_diff(logits, ref.tensor("logits"));
    std::printf("parity %-20s fp32 logits max |diff| %.3g (logit scale %.3g)\n", name, diff,
                ref.tensor("logits").abs().max().item<double>());
    INFO(name << " max diff " << diff);
    REQUIRE(diff < 1e-4);
    model->attention_backend = &attention::reference_backend();
    REQUIRE(max_abs_diff(model->forward(ref.tensor("input_ids")), ref.tensor("logits")) < 1e-4);
  }
}

TEST_CASE("hybrid attention equals transformers given the same 4D mask", "[model]") {
  for (const char* name : {"mha", "gqa_tied_linear", "mqa_dynamic", "llama3_bias_headdim"}) {
    io::SafetensorsFile ref(fixture(name) + "/reference.safetensors");
    const auto settings = reference_json(name)["hybrid_settings"];
    for (const auto& wr : settings) {
      const int64_t W = wr[0].get<int64_t>();
      const double r = wr[1].get<double>();
      model::LoadOptions options;
      options.window_size = W;
      options.global_ratio = r;
      auto model = model::load_pretrained(fixture(name) + "/model", options);
      at::NoGradGuard no_grad;
      std::ostringstream key;
      key << "logits_W" << W << "_r" << r;
      // Python prints 0.0 where C++ prints 0
      std::string k = key.str();
      if (r == 0.0) k += ".0";
      const at::Tensor expected = ref.tensor(k);
      for (bool reference : {false, true}) {
        model->attention_backend = reference ? &attention::reference_backend() : &attention::sdpa_backend();
        const double diff = max_abs_diff(model->forward(ref.tensor("input_ids")), expected);
        INFO(name << " " << k << (reference ? " (reference path)" : " (fast path)") << " max diff " << diff);
        REQUIRE(diff < 1e-4);
      }
      // The hybrid mask must actually change something for these settings.
      REQUIRE(max_abs_diff(expected, ref.tensor("logits")) > 1e-3);
    }
  }
}

TEST_CASE("W = 0 (any r) and W >= T equal plain transformers", "[model]") {
  io::SafetensorsFile ref(fixture("gqa_tied_linear") + "/reference.safetensors");
  for (auto [W, r] : {std::pair<int64_t, double>{0, 0.3}, {0, 0.0}, {24, 0.0}, {100, 0.5}}) {
    model::LoadOptions options;
    options.window_size = W;
    options.global_ratio = r;
    auto model = model::load_pretrained(fixture("gqa_tied_linear") + "/model", options);
    at::NoGradGuard no_grad;
    INFO("W=" << W << " r=" << r);
    REQUIRE(max_abs_diff(model->forward(ref.tensor("input_ids")), ref.tensor("logits")) < 1e-4);
  }
}

TEST_CASE("bf16 logits are as close to the fp32 answer as transformers' bf16", "[model]") {
  // Both sides round every activation to bf16 (8 significant bits), in different
  // orders (SDPA vs eager matmuls), so they differ from each other by about as much
  // as each differs from the exact fp32 logits. The criterion: hyft's bf16 error
  // against transformers' fp32 logits is at most 1.5x transformers' own bf16 error
  // (plus one bf16 step of the logit scale), and the two bf16 results are no
  // further apart than the sum of their errors.
  for (const char* name : kConfigs) {
    io::SafetensorsFile ref(fixture(name) + "/reference.safetensors");
    model::LoadOptions options;
    options.dtype = at::kBFloat16;
    auto model = model::load_pretrained(fixture(name) + "/model", options);
    at::NoGradGuard no_grad;
    const at::Tensor logits = model->forward(ref.tensor("input_ids"));
    REQUIRE(logits.scalar_type() == at::kBFloat16);
    const at::Tensor exact = ref.tensor("logits");
    const double step = exact.abs().max().item<double>() / 256.0;
    const double ours = max_abs_diff(logits, exact);
    const double theirs = max_abs_diff(ref.tensor("logits_bf16"), exact);
    const double between = max_abs_diff(logits, ref.tensor("logits_bf16"));
    std::printf("parity %-20s bf16 logits: hyft err %.3g, transformers err %.3g, between %.3g (bf16 step %.3g)\n",
                name, ours, theirs, between, step);
    INFO(name);
    REQUIRE(ours <= 1.5 * theirs + step);
    REQUIRE(between <= ours + theirs + step);
  }
}

TEST_CASE("hyft eval --json loss equals transformers' token-weighted mean loss", "[model]") {
  for (const char* name : kConfigs) {
    const auto ref = reference_json(name);
    const std::string base = "eval --json --device cpu --model " + test::quote(fixture(name) + "/model") +
                             " --data " + test::quote(fixture(name) + "/data.jsonl");
    for (const char* mb : {"1", "3"}) {
      const auto r = test::run_hyft(base + " --micro-batch " + mb);
      INFO(name << " micro-batch " << mb << ": " << r.err);
      REQUIRE(r.exit_code == 0);
      const auto out = nlohmann::json::parse(r.out);
      const double rel = relative(out["loss"].get<double>(), ref["loss"].get<double>());
      std::printf("parity %-20s eval loss %.8f vs transformers %.8f (rel %.2g, micro-batch %s)\n", name,
                  out["loss"].get<double>(), ref["loss"].get<double>(), rel, mb);
      REQUIRE(rel < 1e-5);
      REQUIRE(out["tokens"] == ref["tokens"]);
      REQUIRE(out["examples"] == ref["examples"]);
      REQUIRE(std::abs(out["perplexity"].get<double>() - std::exp(ref["loss"].get<double>())) <
              1e-4 * std::exp(ref["loss"].get<double>()));
    }
    // Hybrid attention from the flags.
    const auto& h = ref["hybrid"];
    std::ostringstream flags;
    flags << " --window-size " << h["window_size"].get<int64_t>() << " --global-ratio "
          << h["global_ratio"].get<double>();
    const auto rh = test::run_hyft(base + flags.str());
    INFO(rh.err);
    REQUIRE(rh.exit_code == 0);
    const double rel_h = relative(nlohmann::json::parse(rh.out)["loss"].get<double>(), h["loss"].get<double>());
    INFO(name << " hybrid rel " << rel_h);
    REQUIRE(rel_h < 1e-5);
    // bf16: the loss agrees to bf16 accuracy (measured at most 6.4e-4 relative).
    const auto rb = test::run_hyft(base + " --precision bf16");
    REQUIRE(rb.exit_code == 0);
    const double rel_b = relative(nlohmann::json::parse(rb.out)["loss"].get<double>(), ref["loss_bf16"].get<double>());
    std::printf("parity %-20s bf16 eval loss rel diff %.3g vs transformers bf16\n", name, rel_b);
    REQUIRE(rel_b < 2e-3);
  }
}

TEST_CASE("RMSNorm's fused path equals the reference", "[model]") {
  at::manual_seed(2);
  const at::Tensor x = at::randn({3, 5, 48}) * 3, w = at::rand({48}) + 0.5;
  model::RMSNorm norm(48, 1e-6, at::TensorOptions());
  {
    at::NoGradGuard no_grad;
    norm->weight.copy_(w);
  }
  const double fp32 = (norm->forward(x) - model::rms_norm_reference(x, w, 1e-6)).abs().max().item<double>();
  REQUIRE(fp32 < 1e-5);
  // bf16: the reference rounds before the weight, the fused path once at the end.
  const at::Tensor xb = x.to(at::kBFloat16), wb = w.to(at::kBFloat16);
  model::RMSNorm normb(48, 1e-6, at::TensorOptions().dtype(at::kBFloat16));
  {
    at::NoGradGuard no_grad;
    normb->weight.copy_(wb);
  }
  const at::Tensor ref = model::rms_norm_reference(xb, wb, 1e-6).to(at::kFloat);
  const double bf16 = ((normb->forward(xb).to(at::kFloat) - ref).abs() / (ref.abs() + 1e-3)).max().item<double>();
  std::printf("rms_norm fused vs reference: fp32 max |diff| %.3g, bf16 max rel %.3g\n", fp32, bf16);
  REQUIRE(bf16 < 2.0 / 128);  // two bf16 roundings apart at most
}
