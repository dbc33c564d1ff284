// PEFT interop, both ways, and `hyft export` read back by transformers. The
// reference numbers come from PEFT and transformers in the project's Python
// environment (test/python/hf_reference.py).
#include "support/catch.h"
#include "support/process.h"

#include "adapters/peft_format.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "model/load.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>

using namespace hyft;
namespace fs = std::filesystem;

namespace {

std::string llama(const std::string& name) { return std::string(HYFT_FIXTURES) + "/llama/" + name; }
std::string peft(const std::string& name) { return std::string(HYFT_FIXTURES) + "/peft/" + name; }
const std::string kScript = std::string(HYFT_SOURCE_DIR) + "/test/python/hf_reference.py";

double json_loss(const test::ProcessResult& r) {
  INFO("exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out)["loss"].get<double>();
}

double hyft_loss(const std::string& base, const std::string& adapter, const std::string& extra = "") {
  return json_loss(test::run_hyft("eval --json --device cpu --model " + test::quote(llama(base) + "/model") +
                                  (adapter.empty() ? "" : " --adapter " + test::quote(adapter)) + " --data " +
                                  test::quote(llama(base) + "/data.jsonl") + " " + extra));
}

double python_loss(const std::string& args) { return json_loss(test::run_python(test::quote(kScript) + " " + args)); }

double rel(double a, double b) { return std::abs(a - b) / std::abs(b); }

const std::pair<const char*, const char*> kPeftFixtures[] = {
    {"mha_all", "mha"}, {"tied_qv_rslora", "gqa_tied_linear"}, {"bias_kod", "llama3_bias_headdim"},
    {"qv_lm_head", "mha"}, {"qv_saved", "mha"}, {"qv_saved_grown", "mha"}};

std::string copy_adapter(const std::string& from, const std::string& name,
                         const std::function<void(nlohmann::json&)>& edit) {
  const std::string dir = test::temp_dir(name);
  fs::copy_file(from + "/adapter_model.safetensors", dir + "/adapter_model.safetensors");
  auto j = nlohmann::json::parse(test::read_text(from + "/adapter_config.json"));
  edit(j);
  std::ofstream(dir + "/adapter_config.json") << j.dump(2);
  return dir;
}

void require_refusal(const test::ProcessResult& r, const std::string& needle) {
  INFO("stderr: " << r.err);
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.err.find(needle) != std::string::npos);
}

}  // namespace

TEST_CASE("adapters written by PEFT give PEFT's loss in hyft eval --adapter", "[adapters]") {
  for (const auto& [name, base] : kPeftFixtures) {
    const auto ref = nlohmann::json::parse(test::read_text(peft(name) + "/reference.json"));
    const double ours = hyft_loss(base, peft(name));
    std::printf("peft->hyft %-16s loss %.8f vs PEFT %.8f (rel %.2g)\n", name, ours, ref["loss"].get<double>(),
                rel(ours, ref["loss"].get<double>()));
    REQUIRE(rel(ours, ref["loss"].get<double>()) < 1e-5);
    // The adapter matters: without it the loss differs.
    REQUIRE(rel(hyft_loss(base, ""), ref["loss"].get<double>()) > 1e-3);
  }
}

TEST_CASE("adapters written by hyft load in PEFT with the same loss", "[adapters]") {
  for (bool rslora : {false, true}) {
    at::manual_seed(rslora ? 4 : 3);
    auto model = model::load_pretrained(llama("gqa_tied_linear") + "/model", {});
    adapters::LoraSettings s;
    s.targets = {"q_proj", "v_proj", "up_proj"};
    s.r = 4;
    s.alpha = 12;
    s.use_rslora = rslora;
    auto modules = adapters::apply_lora(*model, s);
    {
      at::NoGradGuard no_grad;
      for (auto& [n, m] : modules) m->lora_B->weight.normal_(0.0, 0.3);
    }
    const std::string dir = test::temp_dir(rslora ? "hyft_adapter_rslora" : "hyft_adapter");
    adapters::write_peft_adapter(dir, adapters::adapter_from_modules(*model, modules, s, llama("gqa_tied_linear") + "/model"));
    const double ours = hyft_loss("gqa_tied_linear", dir);
    const double theirs = python_loss("peft-eval " + test::quote(llama("gqa_tied_linear") + "/model") + " " +
                                      test::quote(dir) + " " + test::quote(llama("gqa_tied_linear") + "/data.jsonl"));
    std::printf("hyft->peft rslora=%d loss %.8f vs PEFT %.8f (rel %.2g)\n", int(rslora), ours, theirs, rel(ours, theirs));
    REQUIRE(rel(ours, theirs) < 1e-5);
    // Read back by hyft: the same tensors and settings.
    const auto back = adapters::read_peft_adapter(dir);
    REQUIRE(back.settings.targets == s.targets);
    REQUIRE(back.settings.use_rslora == rslora);
    REQUIRE(back.settings.scaling() == s.scaling());
    REQUIRE(at::equal(back.weights.at("model.layers.1.mlp.up_proj").second,
                      modules.at("model.layers.1.mlp.up_proj")->lora_B->weight));
  }
}

TEST_CASE("LoRA on lm_head: hyft's adapter loads in PEFT with the same loss, and exports", "[adapters]") {
  at::manual_seed(5);
  auto model = model::load_pretrained(llama("mha") + "/model", {});
  adapters::LoraSettings s;
  s.targets = {"q_proj", "lm_head"};
  s.r = 4;
  s.alpha = 8;
  auto modules = adapters::apply_lora(*model, s);
  REQUIRE(modules.count("lm_head"));
  {
    at::NoGradGuard no_grad;
    for (auto& [n, m] : modules) m->lora_B->weight.normal_(0.0, 0.3);
  }
  const std::string dir = test::temp_dir("hyft_adapter_lm_head");
  adapters::write_peft_adapter(dir, adapters::adapter_from_modules(*model, modules, s, llama("mha") + "/model"));
  const double ours = hyft_loss("mha", dir);
  const double theirs = python_loss("peft-eval " + test::quote(llama("mha") + "/model") + " " + test::quote(dir) +
                                    " " + test::quote(llama("mha") + "/data.jsonl"));
  std::printf("hyft->peft lm_head loss %.8f vs PEFT %.8f (rel %.2g)\n", ours, theirs, rel(ours, theirs));
  REQUIRE(rel(ours, theirs) < 1e-5);
  REQUIRE(rel(hyft_loss("mha", ""), theirs) > 1e-3);
  REQUIRE(adapters::read_peft_adapter(dir).settings.targets == s.targets);
  // Merged into lm_head.weight by export, read back by transformers.
  const std::string out = test::temp_dir("export_lm_head") + "/merged";
  const auto r = test::run_hyft("export --dtype fp32 --model " + test::quote(llama("mha") + "/model") +
                                " --adapter " + test::quote(dir) + " --output " + test::quote(out));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const double merged = python_loss("hf-eval " + test::quote(out) + " " + test::quote(llama("mha") + "/data.jsonl"));
  REQUIRE(rel(merged, ours) < 1e-5);
  // A tied model has no lm_head of its own to wrap.
  auto tied = model::load_pretrained(llama("gqa_tied_linear") + "/model", {});
  std::string message;
  try {
    adapters::apply_lora(*tied, s);
  } catch (const UserError& e) {
    message = e.what();
  }
  REQUIRE(message.find("ties lm_head to embed_tokens") != std::string::npos);
}

TEST_CASE("hyft export loads in transformers with hyft's unmerged loss", "[adapters]") {
  const std::string out = test::temp_dir("export");
  const std::string base_args = "export --model " + test::quote(llama("mha") + "/model") + " --adapter " +
                                test::quote(peft("mha_all"));
  const std::string data = test::quote(llama("mha") + "/data.jsonl");

  // fp32, unsharded
  auto r = test::run_hyft(base_args + " --output " + test::quote(out + "/fp32") + " --dtype fp32");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(fs::exists(out + "/fp32/model.safetensors"));
  REQUIRE(fs::exists(out + "/fp32/generation_config.json"));
  REQUIRE_FALSE(fs::exists(out + "/fp32/adapter_config.json"));
  const double unmerged = hyft_loss("mha", peft("mha_all"));
  const double merged = python_loss("hf-eval " + test::quote(out + "/fp32") + " " + data);
  std::printf("export fp32: transformers %.8f vs hyft unmerged %.8f (rel %.2g)\n", merged, unmerged, rel(merged, unmerged));
  REQUIRE(rel(merged, unmerged) < 1e-5);
  REQUIRE(nlohmann::json::parse(test::read_text(out + "/fp32/config.json"))["torch_dtype"] == "float32");

  // bf16, sharded. Merged bf16 weights round W + sBA to 8 significant bits
  // (relative step 2^-8 = 3.9e-3); hyft's unmerged bf16 path rounds W and adds an
  // fp32 LoRA term, so the two differ by bf16 rounding: bound 5e-3 relative
  // (measured 6.3e-4, and 2.1e-3 once RMSNorm rounds once instead of twice).
  r = test::run_hyft(base_args + " --output " + test::quote(out + "/bf16") + " --dtype bf16 --shard-size 20KB");
  REQUIRE(r.exit_code == 0);
  const auto index = nlohmann::json::parse(test::read_text(out + "/bf16/model.safetensors.index.json"));
  std::set<std::string> shards;
  for (const auto& [key, file] : index["weight_map"].items()) shards.insert(file.get<std::string>());
  REQUIRE(shards.size() > 1);
  for (const auto& file : shards) {
    io::SafetensorsFile shard(out + "/bf16/" + file);
    for (const auto& key : shard.keys()) REQUIRE(shard.entry(key).dtype == "BF16");
  }
  const double merged_bf16 = python_loss("hf-eval " + test::quote(out + "/bf16") + " " + data + " --dtype bf16");
  const double unmerged_bf16 = hyft_loss("mha", peft("mha_all"), "--precision bf16");
  std::printf("export bf16 sharded: transformers %.8f vs hyft unmerged bf16 %.8f (rel %.2g)\n", merged_bf16,
              unmerged_bf16, rel(merged_bf16, unmerged_bf16));
  REQUIRE(rel(merged_bf16, unmerged_bf16) < 5e-3);
  REQUIRE(rel(merged_bf16, unmerged) < 5e-3);

  // An existing non-empty output needs --force; with it the folder is replaced.
  require_refusal(test::run_hyft(base_args + " --output " + test::quote(out + "/fp32")), "--force");
  REQUIRE(test::run_hyft(base_args + " --output " + test::quote(out + "/fp32") + " --force --dtype fp16").exit_code == 0);
  REQUIRE(nlohmann::json::parse(test::read_text(out + "/fp32/config.json"))["torch_dtype"] == "float16");
  for (const auto& e : fs::directory_iterator(out)) {  // swapped in one step: nothing left beside it
    REQUIRE(e.path().filename().string().find(".tmp-") == std::string::npos);
    REQUIRE(e.path().filename().string().find(".old-") == std::string::npos);
  }
}

TEST_CASE("unsupported or mismatched adapters are refused with the reason", "[adapters]") {
  const std::string eval_mha = "eval --device cpu --model " + test::quote(llama("mha") + "/model") + " --data " +
                               test::quote(llama("mha") + "/data.jsonl") + " --adapter ";
  // An adapter for another base: mha's q_proj is (32, 32), llama3_bias_headdim's (48, 32).
  require_refusal(test::run_hyft("eval --device cpu --model " + test::quote(llama("llama3_bias_headdim") + "/model") +
                                 " --data " + test::quote(llama("llama3_bias_headdim") + "/data.jsonl") +
                                 " --adapter " + test::quote(peft("mha_all"))),
                  "another base model");
  require_refusal(test::run_hyft("export --model " + test::quote(llama("llama3_bias_headdim") + "/model") +
                                 " --adapter " + test::quote(peft("mha_all")) + " --output " +
                                 test::quote(test::temp_dir("refused_export") + "/out")),
                  "another base model");
  const std::string src = peft("mha_all");
  require_refusal(test::run_hyft(eval_mha + test::quote(copy_adapter(src, "dora", [](auto& j) { j["use_dora"] = true; }))),
                  "DoRA");
  require_refusal(test::run_hyft(eval_mha + test::quote(copy_adapter(src, "mts", [](auto& j) {
                                   j["modules_to_save"] = {"lm_head"};
                                 }))),
                  "modules_to_save");
  require_refusal(test::run_hyft(eval_mha + test::quote(copy_adapter(src, "rank", [](auto& j) {
                                   j["rank_pattern"] = {{"q_proj", 4}};
                                 }))),
                  "rank_pattern");
  require_refusal(test::run_hyft(eval_mha + test::quote(copy_adapter(src, "ia3", [](auto& j) { j["peft_type"] = "IA3"; }))),
                  "IA3");
  require_refusal(test::run_hyft(eval_mha + test::quote(copy_adapter(src, "rmismatch", [](auto& j) { j["r"] = 5; }))),
                  "r = 5");
  require_refusal(test::run_hyft(eval_mha + test::quote(test::temp_dir("empty_adapter"))), "adapter_config.json");
}

TEST_CASE("the attention rule travels with the adapter and the export", "[adapters]") {
  const std::string dir = test::temp_dir("trained_with");
  const std::string model = test::quote(llama("mha") + "/model"), data = test::quote(llama("mha") + "/data.jsonl");
  auto r = test::run_hyft("finetune --device cpu --model " + model + " --train " + data + " --output " +
                          test::quote(dir + "/run") + " --window-size 4 --global-ratio 0.25 --max-steps 3 "
                          "--micro-batch 2 --lr 1e-2");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string adapter = dir + "/run/adapter";
  const auto recorded = nlohmann::json::parse(test::read_text(adapter + "/hyft.json"));
  REQUIRE(recorded["window_size"] == 4);
  REQUIRE(recorded["global_ratio"] == 0.25);

  // eval --adapter reads the rule back; a flag wins, with a notice.
  auto eval = [&](const std::string& m, const std::string& extra) {
    const auto e = test::run_hyft("eval --json --device cpu --model " + m + " --data " + data + " " + extra);
    INFO(e.err);
    REQUIRE(e.exit_code == 0);
    return std::make_pair(nlohmann::json::parse(e.out), e.err);
  };
  const auto [with_rule, quiet] = eval(model, "--adapter " + test::quote(adapter));
  REQUIRE(with_rule["window_size"] == 4);
  REQUIRE(with_rule["global_ratio"] == 0.25);
  REQUIRE(quiet.find("notice") == std::string::npos);
  const auto [causal, notice] = eval(model, "--adapter " + test::quote(adapter) + " --window-size 0 --global-ratio 0");
  REQUIRE(causal["window_size"] == 0);
  REQUIRE(notice.find("--window-size 0 overrides the 4 the adapter was trained with") != std::string::npos);
  REQUIRE(std::abs(causal["loss"].get<double>() - with_rule["loss"].get<double>()) > 1e-6);  // the rule matters here

  // PEFT loads the folder (hyft.json beside its files) and computes plain causal attention.
  const double peft_loss = python_loss("peft-eval " + model + " " + test::quote(adapter) + " " + data);
  REQUIRE(rel(causal["loss"].get<double>(), peft_loss) < 1e-5);

  // The export records the rule in config.json, which hyft reads back and transformers loads.
  const std::string merged = dir + "/merged";
  r = test::run_hyft("export --dtype fp32 --model " + model + " --adapter " + test::quote(adapter) + " --output " +
                     test::quote(merged));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto config = nlohmann::json::parse(test::read_text(merged + "/config.json"));
  REQUIRE(config["sliding_window"] == 4);
  REQUIRE(config["global_ratio"] == 0.25);
  REQUIRE(fs::exists(merged + "/hyft.json"));
  const auto [exported, _] = eval(test::quote(merged), "");
  REQUIRE(exported["window_size"] == 4);
  REQUIRE(rel(exported["loss"].get<double>(), with_rule["loss"].get<double>()) < 1e-5);
  const double hf = python_loss("hf-eval " + test::quote(merged) + " " + data);
  REQUIRE(rel(hf, causal["loss"].get<double>()) < 1e-5);

  // --global-ratio without a window is refused, not ignored.
  r = test::run_hyft("eval --device cpu --model " + model + " --data " + data + " --global-ratio 0.1");
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.err.find("has no effect without a window") != std::string::npos);
}

TEST_CASE("adapter_config.json errors name the key, in plain words", "[adapters]") {
  const std::pair<std::function<void(nlohmann::json&)>, const char*> cases[] = {
      {[](nlohmann::json& j) { j.erase("r"); }, "'r' is missing"},
      {[](nlohmann::json& j) { j["r"] = "8"; }, "'r' must be a whole number, got \"8\""},
      {[](nlohmann::json& j) { j["lora_alpha"] = "high"; }, "'lora_alpha' must be a number"},
      {[](nlohmann::json& j) { j["use_rslora"] = 1; }, "'use_rslora' must be true or false"},
      {[](nlohmann::json& j) { j["target_modules"] = {"q_proj", 7}; }, "'target_modules' must list module names"}};
  int i = 0;
  for (const auto& [edit, needle] : cases) {
    const std::string dir = copy_adapter(peft("mha_all"), "bad_config_" + std::to_string(i++), edit);
    const auto r = test::run_hyft("eval --device cpu --model " + test::quote(llama("mha") + "/model") +
                                  " --adapter " + test::quote(dir) + " --data " +
                                  test::quote(llama("mha") + "/data.jsonl"));
    require_refusal(r, needle);
    REQUIRE(r.err.find("json.exception") == std::string::npos);
  }
}

TEST_CASE("resize_vocab grows embed_tokens and lm_head as transformers' resize_token_embeddings", "[adapters]") {
  for (const std::string base : {"mha", "gqa_tied_linear"}) {
    auto model = model::load_pretrained(llama(base) + "/model", {});
    const int64_t V = model->config().vocab_size, grown = V + 7;
    const at::Tensor old_embed = model->model->embed_tokens->weight.clone();
    model->resize_vocab(grown);
    const std::string out = test::temp_dir("hf_resize_" + base) + "/resized.safetensors";
    const auto r = test::run_python(test::quote(kScript) + " hf-resize " + test::quote(llama(base) + "/model") + " " +
                                    std::to_string(grown) + " " + test::quote(out));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    io::SafetensorsFile theirs(out);
    std::vector<std::pair<std::string, at::Tensor>> ours = {{"embed_tokens", model->model->embed_tokens->weight}};
    if (model->lm_head) ours.emplace_back("lm_head", std::dynamic_pointer_cast<model::Projection>(model->lm_head)->weight);
    REQUIRE(model->config().vocab_size == grown);
    REQUIRE(theirs.contains("lm_head") == bool(model->lm_head));
    for (const auto& [name, w] : ours) {
      const at::Tensor t = theirs.tensor(name);
      REQUIRE(w.sizes() == t.sizes());
      // Old rows unchanged; new rows the mean (transformers adds noise of 1e-9 x the covariance).
      REQUIRE(at::equal(w.slice(0, 0, V), t.slice(0, 0, V)));
      const double d = (w.slice(0, V) - t.slice(0, V)).abs().max().item<double>();
      const double spread = t.slice(0, 0, V).std().item<double>();
      std::printf("resize %s %s: new rows max |diff| %.3g (rows' std %.3g)\n", base.c_str(), name.c_str(), d, spread);
      REQUIRE(d < 1e-3 * spread);
    }
    REQUIRE(at::equal(model->model->embed_tokens->weight.slice(0, 0, V), old_embed));
  }
}

TEST_CASE("modules_to_save written by hyft (also after a vocabulary resize) load in PEFT with the same loss",
          "[adapters]") {
  for (const int64_t grow : {0, 4}) {
    at::manual_seed(11 + grow);
    auto model = model::load_pretrained(llama("mha") + "/model", {});
    if (grow) model->resize_vocab(model->config().vocab_size + grow);
    adapters::LoraSettings s;
    s.targets = {"q_proj", "v_proj"};
    s.modules_to_save = {"embed_tokens", "lm_head"};
    s.r = 4;
    s.alpha = 8;
    auto modules = adapters::apply_lora(*model, s);
    {
      at::NoGradGuard no_grad;
      for (auto& [n, m] : modules) m->lora_B->weight.normal_(0.0, 0.3);
      for (const auto& m : s.modules_to_save) {
        auto w = adapters::saved_module_weight(*model, m);
        REQUIRE(w.requires_grad());
        REQUIRE(w.scalar_type() == at::kFloat);
        w.add_(at::randn_like(w) * 0.3);
      }
    }
    const std::string dir = test::temp_dir("hyft_adapter_saved_" + std::to_string(grow));
    adapters::write_peft_adapter(dir, adapters::adapter_from_modules(*model, modules, s, llama("mha") + "/model"));
    const auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
    REQUIRE(config["modules_to_save"] == nlohmann::json({"embed_tokens", "lm_head"}));
    io::SafetensorsFile file(dir + "/adapter_model.safetensors");
    REQUIRE(file.contains("base_model.model.model.embed_tokens.weight"));
    REQUIRE(file.contains("base_model.model.lm_head.weight"));
    const double ours = hyft_loss("mha", dir);
    const double theirs = python_loss("peft-eval " + test::quote(llama("mha") + "/model") + " " + test::quote(dir) +
                                      " " + test::quote(llama("mha") + "/data.jsonl"));
    std::printf("hyft->peft modules_to_save (vocab +%lld) loss %.8f vs PEFT %.8f (rel %.2g)\n",
                static_cast<long long>(grow), ours, theirs, rel(ours, theirs));
    REQUIRE(rel(ours, theirs) < 1e-5);
    // Read back: the settings and the whole weights.
    const auto back = adapters::read_peft_adapter(dir);
    REQUIRE(back.settings.modules_to_save == s.modules_to_save);
    REQUIRE(at::equal(back.saved_modules.at("lm_head"), adapters::saved_module_weight(*model, "lm_head")));
  }
}

TEST_CASE("--add-special-tokens: new tokens are trained, travel with the adapter and export, and tokenize as "
          "transformers does", "[adapters]") {
  const std::string dir = test::temp_dir("added_tokens");
  std::ofstream(dir + "/config.json") << R"({"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
      "num_attention_heads": 2, "max_position_embeddings": 128})";
  const std::string base = dir + "/base", run = dir + "/run", merged = dir + "/merged";
  auto r = test::run_hyft("model init --model-config " + test::quote(dir + "/config.json") + " --tokenizer " +
                          test::quote(std::string(HYFT_FIXTURES) + "/tokenizer/test.model") + " --output " +
                          test::quote(base));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const int64_t pieces = nlohmann::json::parse(test::read_text(base + "/config.json"))["vocab_size"].get<int64_t>();
  std::ofstream chat(dir + "/chat.jsonl");
  for (const char* q : {"What is green?", "Name a fruit.", "Say hi."})
    chat << nlohmann::json({{"messages", {{{"role", "user"}, {"content", q}},
                                          {{"role", "assistant"}, {"content", "A lime <|im_end|> is green."}}}}})
                .dump()
         << "\n";
  chat.close();
  r = test::run_hyft("finetune --device cpu --model " + test::quote(base) + " --train " +
                     test::quote(dir + "/chat.jsonl") + " --output " + test::quote(run) +
                     " --add-special-tokens '<|im_start|>,<|im_end|>' --max-steps 3 --micro-batch 3 --lr 1e-2");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("added 2 special token(s)") != std::string::npos);
  REQUIRE(r.out.find("modules_to_save") != std::string::npos);

  // The adapter: PEFT's modules_to_save with the grown vocabulary, and its tokenizer.
  const std::string adapter = run + "/adapter";
  io::SafetensorsFile file(adapter + "/adapter_model.safetensors");
  REQUIRE(file.entry("base_model.model.model.embed_tokens.weight").shape[0] == pieces + 2);
  REQUIRE(file.entry("base_model.model.lm_head.weight").shape[0] == pieces + 2);
  const auto tc = nlohmann::json::parse(test::read_text(adapter + "/tokenizer_config.json"));
  REQUIRE(tc["added_tokens_decoder"][std::to_string(pieces)]["content"] == "<|im_start|>");
  REQUIRE(tc["added_tokens_decoder"][std::to_string(pieces + 1)]["content"] == "<|im_end|>");
  // The new rows moved from their mean initialisation: they were trained.
  const at::Tensor embed = file.tensor("base_model.model.model.embed_tokens.weight");
  const at::Tensor mean = embed.slice(0, 0, pieces).mean(0);
  REQUIRE((embed[pieces] - mean).abs().max().item<double>() > 1e-4);

  // Export: vocab_size and tokenizer_config.json carry the new tokens.
  r = test::run_hyft("export --dtype fp32 --model " + test::quote(base) + " --adapter " + test::quote(adapter) +
                     " --output " + test::quote(merged));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(nlohmann::json::parse(test::read_text(merged + "/config.json"))["vocab_size"] == pieces + 2);

  // hyft's ids for the chat records (the export's tokenizer) equal AutoTokenizer's
  // apply_chat_template on the exported folder, and hold the new ids.
  r = test::run_hyft("data render --data " + test::quote(dir + "/chat.jsonl") + " --model " + test::quote(merged));
  REQUIRE(r.exit_code == 0);
  std::vector<nlohmann::json> ours;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) ours.push_back(nlohmann::json::parse(line));
  const auto ref = test::run_python(test::quote(kScript) + " hf-tokenize " + test::quote(merged) + " " +
                                    test::quote(dir + "/chat.jsonl"));
  INFO(ref.err);
  REQUIRE(ref.exit_code == 0);
  const auto theirs = nlohmann::json::parse(ref.out)["ids"];
  REQUIRE(ours.size() == theirs.size());
  std::ofstream ids(dir + "/ids.jsonl");
  for (size_t i = 0; i < ours.size(); ++i) {
    REQUIRE(ours[i]["input_ids"] == theirs[i]);
    const auto v = ours[i]["input_ids"].get<std::vector<int64_t>>();
    REQUIRE(std::count(v.begin(), v.end(), pieces) >= 2);      // <|im_start|> opens each turn
    REQUIRE(std::count(v.begin(), v.end(), pieces + 1) >= 3);  // <|im_end|>, also inside the answer
    ids << nlohmann::json({{"input_ids", v}}).dump() << "\n";
  }
  ids.close();
  std::printf("added tokens: %zu chat records, ids equal to AutoTokenizer's on the export\n", ours.size());

  // hyft tokenizer encode / decode on the export: AutoTokenizer's ids (BOS, no EOS), and back.
  const std::vector<std::string> texts = {"<|im_start|>user\nWhat is green?<|im_end|>", "plain text, no markers",
                                          "a lime<|im_end|><|im_start|>assistant\nA lime."};
  std::ofstream tj(dir + "/texts.jsonl");
  for (const auto& t : texts) tj << nlohmann::json({{"text", t}}).dump() << "\n";
  tj.close();
  r = test::run_hyft("tokenizer encode --tokenizer " + test::quote(merged) + " --input " +
                     test::quote(dir + "/texts.jsonl"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto hf_texts = test::run_python(test::quote(kScript) + " hf-tokenize " + test::quote(merged) + " " +
                                         test::quote(dir + "/texts.jsonl"));
  REQUIRE(hf_texts.exit_code == 0);
  const auto hf_ids = nlohmann::json::parse(hf_texts.out)["ids"];
  std::istringstream encoded(r.out);
  size_t n = 0;
  for (std::string line; std::getline(encoded, line); ++n) {
    auto mine = nlohmann::json::parse(line).get<std::vector<int64_t>>();
    auto theirs = hf_ids[n].get<std::vector<int64_t>>();
    theirs.pop_back();  // hf-tokenize appends EOS as training does; encode adds none
    INFO(texts[n]);
    REQUIRE(mine == theirs);
    const std::vector<int64_t> body(mine.begin() + 1, mine.end());
    const auto back = test::run_hyft("tokenizer decode --tokenizer " + test::quote(merged) + " --ids " +
                                     test::quote(nlohmann::json(body).dump()));
    REQUIRE(back.out == texts[n] + "\n");
  }
  REQUIRE(n == texts.size());

  // The same loss through hyft (adapter, export), PEFT (base resized) and transformers (export).
  const std::string data = test::quote(dir + "/ids.jsonl");
  const double with_adapter = json_loss(test::run_hyft("eval --json --device cpu --model " + test::quote(base) +
                                                       " --adapter " + test::quote(adapter) + " --data " + data));
  const double exported = json_loss(test::run_hyft("eval --json --device cpu --model " + test::quote(merged) +
                                                   " --data " + data));
  const double peft_loss = python_loss("peft-eval " + test::quote(base) + " " + test::quote(adapter) + " " + data);
  const double hf_loss = python_loss("hf-eval " + test::quote(merged) + " " + data);
  std::printf("added tokens: loss hyft adapter %.8f, hyft export %.8f, PEFT %.8f, transformers %.8f\n", with_adapter,
              exported, peft_loss, hf_loss);
  REQUIRE(rel(with_adapter, peft_loss) < 1e-5);
  REQUIRE(rel(exported, hf_loss) < 1e-5);
  REQUIRE(rel(with_adapter, exported) < 1e-5);
}
