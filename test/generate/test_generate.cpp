// Generation: greedy decoding equals transformers' generate token for token, the
// KV cache gives the logits of a full forward pass at every step, sampling is
// reproducible, and the logits processing equals transformers' processors.
#include "support/catch.h"
#include "support/process.h"

#include "common/strings.h"

#include "generate/engine.h"
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

TEST_CASE("continuous batching: each request gets the tokens it gets alone", "[generate]") {
  // 7 requests (greedy and sampled, prompts of 1 to 13 tokens, 3 to 20 new tokens)
  // through an engine of 3 slots: they queue, join and leave the batch mid-way.
  for (const auto& [W, r] : {std::pair<int64_t, double>{0, 0.0}, {4, 0.25}}) {
    model::LoadOptions o;
    o.window_size = W;
    o.global_ratio = r;
    auto model = model::load_pretrained(llama("gqa_tied_linear") + "/model", o);
    std::vector<generate::Request> requests;
    for (int i = 0; i < 7; ++i) {
      generate::Request q;
      for (int t = 0; t <= (i * 5) % 13; ++t) q.prompt.push_back(1 + (i * 7 + t * 3) % 90);
      q.settings.max_new_tokens = 3 + (i * 11) % 18;
      q.settings.sampling = i % 2 ? generate::SamplingSettings{0.8, 0.9, 10, 1.1} : generate::SamplingSettings{0.0, 1.0, 0, 1.0};
      q.settings.seed = uint64_t(i);
      requests.push_back(q);
    }
    generate::EngineOptions eo;
    eo.slots = 3;
    eo.max_len = 40;
    generate::Engine engine(*model, eo);
    std::vector<std::vector<int64_t>> batched(requests.size());
    std::vector<int> done(requests.size(), 0);
    for (size_t i = 0; i < requests.size(); ++i) {
      generate::Request q = requests[i];
      q.on_token = [&, i](int64_t t) {
        batched[i].push_back(t);
        return true;
      };
      q.on_done = [&, i](generate::FinishReason, const std::string& e) {
        INFO(e);
        REQUIRE(e.empty());
        ++done[i];
      };
      REQUIRE(engine.submit(q));
    }
    engine.run_until_idle();
    int equal = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      REQUIRE(done[i] == 1);
      const auto alone = generate::generate(*model, requests[i].prompt, requests[i].settings).tokens;
      equal += alone == batched[i];
      INFO("request " << i << " W=" << W);
      REQUIRE(alone == batched[i]);
    }
    std::printf("engine W=%lld: %d of %zu requests batched (3 slots, %lld steps) equal alone\n", (long long)W, equal,
                requests.size(), (long long)engine.stats().steps);
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
  // The batch version, every case at once (as the engine runs them), row by row.
  std::vector<const std::vector<int64_t>*> history_of;
  for (const auto& h : histories) history_of.push_back(&h);
  const at::Tensor batch = generate::process_logits_batch(at::stack(logits), history_of, settings);
  for (size_t i = 0; i < settings.size(); ++i) {
    const at::Tensor ours = generate::process_logits(logits[i], histories[i], settings[i]);
    const at::Tensor row = batch[int64_t(i)];
    INFO("case " << i << ": the batch row and the one-row reference");
    REQUIRE(at::equal(row.isinf(), ours.isinf()));
    const at::Tensor finite = ours.isfinite();
    REQUIRE((row.masked_select(finite) - ours.masked_select(finite)).abs().max().item<float>() <= 1e-6f);
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

TEST_CASE("batched sampling: a row's token is its own, and draws follow the probabilities", "[generate]") {
  using generate::SamplingSettings;
  at::manual_seed(5);
  const int64_t V = 40;
  const at::Tensor logits = at::randn({4, V}) * 2;
  const std::vector<int64_t> h0 = {1, 2, 3}, h1 = {}, h2 = {5, 5}, h3 = {7};
  const std::vector<const std::vector<int64_t>*> histories = {&h0, &h1, &h2, &h3};
  const std::vector<SamplingSettings> settings = {
      {0.0, 1.0, 0, 1.3}, {0.8, 0.9, 0, 1.0}, {1.0, 1.0, 5, 1.2}, {1.2, 0.7, 8, 1.0}};
  auto generators = [](uint64_t seed) {
    std::vector<at::Generator> g;
    for (uint64_t i = 0; i < 4; ++i) g.push_back(at::make_generator<at::CPUGeneratorImpl>(seed + i));
    return g;
  };
  // In a batch or alone, with the same generator state, each row draws the same token.
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto gb = generators(seed), ga = generators(seed);
    const auto batched = generate::next_tokens(logits, histories, settings, {&gb[0], &gb[1], &gb[2], &gb[3]});
    for (int64_t i = 0; i < 4; ++i) {
      const int64_t alone = generate::next_token(logits[i], *histories[size_t(i)], settings[size_t(i)], ga[size_t(i)]);
      INFO("seed " << seed << " row " << i);
      REQUIRE(alone == batched[size_t(i)]);
    }
    // greedy: the argmax of the penalised logits; top-k: one of the k largest
    REQUIRE(batched[0] == generate::process_logits(logits[0], h0, settings[0]).argmax().item<int64_t>());
    REQUIRE(std::isfinite(generate::process_logits(logits[2], h2, settings[2])[batched[2]].item<float>()));
  }
  // Frequencies over 20,000 draws match softmax(processed) (each within 5 standard errors).
  const at::Tensor probs = at::softmax(generate::process_logits(logits[1], h1, settings[1]), 0);
  std::vector<int64_t> counts(size_t(V), 0);
  auto g = at::make_generator<at::CPUGeneratorImpl>(uint64_t(99));
  const int64_t draws = 20000;
  for (int64_t d = 0; d < draws; ++d) ++counts[size_t(generate::next_token(logits[1], h1, settings[1], g))];
  double worst = 0;
  for (int64_t v = 0; v < V; ++v) {
    const double p = probs[v].item<double>(), f = double(counts[size_t(v)]) / double(draws);
    if (p == 0) REQUIRE(counts[size_t(v)] == 0);  // dropped by top-p: never drawn
    const double se = std::sqrt(std::max(p * (1 - p), 1e-12) / double(draws));
    worst = std::max(worst, std::abs(f - p) / se);
  }
  std::printf("sampling: %lld draws, largest deviation %.2f standard errors\n", (long long)draws, worst);
  REQUIRE(worst < 5.0);
}

TEST_CASE("hyft generate: --prompt prints the completion, --input writes JSONL, --log keeps everything", "[generate]") {
  const std::string dir = test::temp_dir("generate_cli");
  const std::string tok = std::string(HYFT_FIXTURES) + "/tokenizer/test.model";
  std::ofstream(dir + "/config.json") << R"({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256})";
  auto r = test::run_hyft("model init --model-config " + test::quote(dir + "/config.json") + " --tokenizer " +
                          test::quote(tok) + " --output " + test::quote(dir + "/model") + " --seed 3");
  REQUIRE(r.exit_code == 0);
  const std::string base = "generate --device cpu --model " + test::quote(dir + "/model") + " --max-new-tokens 6 ";
  const auto a = test::run_hyft(base + "--prompt 'The quick brown fox' --temperature 0");
  const auto b = test::run_hyft(base + "--prompt 'The quick brown fox' --temperature 0");
  INFO(a.err);
  REQUIRE(a.exit_code == 0);
  REQUIRE(a.out == b.out);                         // greedy is deterministic
  REQUIRE(a.out.find("quick brown") == std::string::npos);  // the completion alone
  std::ofstream(dir + "/in.jsonl") << R"({"prompt": "是否高风险?"})" << "\n"
                                   << R"({"messages": [{"role": "user", "content": "hi"}]})" << "\n"
                                   << R"({"instruction": "Say hi", "input": ""})" << "\n";
  r = test::run_hyft(base + "--input " + test::quote(dir + "/in.jsonl") + " --output " + test::quote(dir + "/out.jsonl") +
                     " --log " + test::quote(dir + "/log.jsonl") + " --seed 5");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::ifstream out(dir + "/out.jsonl"), log(dir + "/log.jsonl");
  int lines = 0;
  for (std::string line; std::getline(out, line); ++lines) {
    const auto j = nlohmann::json::parse(line);
    REQUIRE(j["line"] == lines + 1);
    REQUIRE(j.contains("output"));
    REQUIRE(j["new_tokens"].get<int64_t>() <= 6);
  }
  REQUIRE(lines == 3);
  int logged = 0;
  for (std::string line; std::getline(log, line); ++logged) {
    const auto j = nlohmann::json::parse(line);
    REQUIRE(j.contains("time"));
    REQUIRE(j["settings"]["temperature"] == 0.7);
    REQUIRE(j["settings"]["repetition_penalty"] == 1.2);
  }
  REQUIRE(logged == 3);
  REQUIRE(test::run_hyft(base + "--prompt x --top-p 0").exit_code == 2);
  REQUIRE(test::run_hyft(base).exit_code == 2);  // neither --prompt nor --input
}

TEST_CASE("a model folder from hyft generates in transformers what hyft generates, from text", "[generate]") {
  // model init writes tokenizer_config.json: AutoTokenizer encodes the prompt as
  // hyft does, greedy generate continues it as hyft does, and decoding agrees.
  const std::string dir = test::temp_dir("generate_text");
  const std::string tok = std::string(HYFT_FIXTURES) + "/tokenizer/test.model";
  std::ofstream(dir + "/config.json") << R"({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128, "initializer_range": 0.3})";
  auto r = test::run_hyft("model init --model-config " + test::quote(dir + "/config.json") + " --tokenizer " +
                          test::quote(tok) + " --output " + test::quote(dir + "/model"));
  REQUIRE(r.exit_code == 0);
  for (const std::string prompt : {"The quick brown fox", "用户画像: 是否高风险?"}) {
    std::ofstream(dir + "/in.jsonl") << nlohmann::json({{"text", prompt}}).dump() << "\n";
    r = test::run_hyft("generate --device cpu --model " + test::quote(dir + "/model") + " --input " +
                       test::quote(dir + "/in.jsonl") + " --temperature 0 --repetition-penalty 1 --max-new-tokens 12");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const auto ours = nlohmann::json::parse(r.out);
    const auto ref = test::run_python(test::quote(kScript) + " hf-generate-text " + test::quote(dir + "/model") +
                                      " " + test::quote(prompt) + " 12");
    INFO(ref.err);
    REQUIRE(ref.exit_code == 0);
    const auto theirs = nlohmann::json::parse(ref.out);
    std::printf("greedy from '%s': %zu tokens equal; hyft '%s', transformers '%s'\n", prompt.c_str(),
                theirs["ids"].size(), ours["output"].get<std::string>().c_str(), theirs["text"].get<std::string>().c_str());
    REQUIRE(ours["output_ids"] == theirs["ids"]);
    REQUIRE(!theirs["ids"].empty());
  }
}
