// Generation: greedy decoding equals transformers' generate token for token, the
// KV cache gives the logits of a full forward pass at every step, sampling is
// reproducible, and the logits processing equals transformers' processors.
#include "support/catch.h"
#include "support/process.h"

#include "generate/generator.h"
#include "model/load.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

using namespace hyft;

namespace {
std::string llama(const std::string& name) { return std::string(HYFT_FIXTURES) + "/llama/" + name; }
const std::string kScript = std::string(HYFT_SOURCE_DIR) + "/test/python/hf_reference.py";
const std::vector<int64_t> kPrompt = {1, 17, 42, 5, 63, 8};
}  // namespace

TEST_CASE("greedy generation equals transformers' generate(do_sample=False)", "[generate]") {
  for (const char* name : {"mha", "gqa_tied_linear", "llama3_bias_headdim", "mistral_window"}) {
    for (double penalty : {1.0, 1.3}) {
      auto model = model::load_pretrained(llama(name) + "/model", {});
      generate::GenerateSettings s;
      s.sampling = {0.0, 1.0, 0, penalty};
      s.max_new_tokens = 24;
      s.stop_ids = model->config().eos_token_ids;
      const auto ours = generate::generate(*model, kPrompt, s);
      std::ostringstream ids;
      for (size_t i = 0; i < kPrompt.size(); ++i) ids << (i ? "," : "") << kPrompt[i];
      const auto r = test::run_python(test::quote(kScript) + " hf-generate " + test::quote(llama(name) + "/model") +
                                      " " + ids.str() + " 24 " + std::to_string(penalty));
      INFO(name << " penalty " << penalty << ": " << r.err);
      REQUIRE(r.exit_code == 0);
      const auto theirs = nlohmann::json::parse(r.out)["tokens"].get<std::vector<int64_t>>();
      std::printf("generate %-20s penalty %.1f: %zu tokens, equal to transformers: %s\n", name, penalty,
                  ours.tokens.size(), ours.tokens == theirs ? "yes" : "NO");
      REQUIRE(ours.tokens == theirs);
    }
  }
}

TEST_CASE("logits with the KV cache equal those without it at every step", "[generate]") {
  for (const char* name : {"mha", "gqa_tied_linear", "llama3_bias_headdim"}) {
    for (const auto& [W, r] : {std::pair<int64_t, double>{0, 0.0}, {4, 0.25}, {3, 0.0}}) {
      model::LoadOptions o;
      o.window_size = W;
      o.global_ratio = r;
      auto model = model::load_pretrained(llama(name) + "/model", o);
      at::NoGradGuard no_grad;
      std::vector<int64_t> seq = kPrompt;
      model::KVCache cache;
      at::Tensor step_logits = model->forward_cached(at::tensor(seq, at::kLong).unsqueeze(0), cache);
      double worst = 0;
      for (int step = 0; step < 12; ++step) {
        const int64_t next = step_logits.select(1, -1).argmax(-1).item<int64_t>();
        const at::Tensor full = model->forward(at::tensor(seq, at::kLong).unsqueeze(0));  // no cache
        worst = std::max(worst, (full.select(1, -1) - step_logits.select(1, -1)).abs().max().item<double>());
        seq.push_back(next);
        step_logits = model->forward_cached(at::full({1, 1}, next, at::kLong), cache);
      }
      std::printf("kv cache %-20s W=%lld r=%.2f: max |diff| over 12 steps %.3g\n", name, (long long)W, r, worst);
      INFO(name << " W=" << W << " r=" << r);
      REQUIRE(worst < 1e-5);
      REQUIRE(cache.length == int64_t(seq.size()));
    }
  }
}

TEST_CASE("sampling is reproducible for a seed", "[generate]") {
  auto model = model::load_pretrained(llama("mha") + "/model", {});
  generate::GenerateSettings s;
  s.sampling = {0.9, 0.95, 20, 1.2};
  s.max_new_tokens = 30;
  s.seed = 7;
  const auto a = generate::generate(*model, kPrompt, s);
  const auto b = generate::generate(*model, kPrompt, s);
  REQUIRE(a.tokens == b.tokens);
  s.seed = 8;
  const auto c = generate::generate(*model, kPrompt, s);
  REQUIRE(c.tokens != a.tokens);
}

TEST_CASE("logits processing equals transformers' processors", "[generate]") {
  at::manual_seed(11);
  nlohmann::json spec;
  std::vector<generate::SamplingSettings> settings = {
      {1.0, 1.0, 0, 1.2}, {0.7, 1.0, 0, 1.0}, {1.0, 1.0, 5, 1.0}, {1.0, 0.9, 0, 1.0},
      {0.7, 0.9, 0, 1.2}, {0.5, 0.8, 10, 1.5}, {1.3, 0.3, 3, 1.1}};
  std::vector<at::Tensor> logits;
  std::vector<std::vector<int64_t>> histories;
  for (size_t i = 0; i < settings.size(); ++i) {
    logits.push_back(at::randn({50}) * 3);
    histories.push_back({3, 7, 7, 11, 42, int64_t(i)});
    const auto& s = settings[i];
    spec["cases"].push_back({{"logits", std::vector<float>(logits[i].data_ptr<float>(), logits[i].data_ptr<float>() + 50)},
                             {"history", histories[i]}, {"temperature", s.temperature}, {"top_p", s.top_p},
                             {"top_k", s.top_k}, {"penalty", s.repetition_penalty}});
  }
  const std::string dir = test::temp_dir("processors");
  std::ofstream(dir + "/spec.json") << spec.dump();
  const auto r = test::run_python(test::quote(kScript) + " hf-process " + test::quote(dir + "/spec.json"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto ref = nlohmann::json::parse(r.out)["processed"];
  for (size_t i = 0; i < settings.size(); ++i) {
    const at::Tensor ours = generate::process_logits(logits[i], histories[i], settings[i]);
    int64_t kept = 0;
    for (int64_t v = 0; v < 50; ++v) {
      const float x = ours[v].item<float>();
      INFO("case " << i << " token " << v);
      if (ref[i][size_t(v)].is_null()) {
        REQUIRE(std::isinf(x));
      } else {
        ++kept;
        REQUIRE(x == Catch::Approx(ref[i][size_t(v)].get<double>()).epsilon(1e-6));
      }
    }
    REQUIRE(kept >= 1);
  }
}
