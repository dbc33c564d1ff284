#include "adapters/peft_format.h"

#include "common/error.h"
#include "common/strings.h"
#include "io/json_file.h"
#include "io/atomic_dir.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

namespace hyft::adapters {

namespace {

const std::string kPrefix = "base_model.model.";
const std::string kA = ".lora_A.weight", kB = ".lora_B.weight", kBase = ".base_layer.weight";

bool is_set(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return false;
  const auto& v = j[key];
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_object() || v.is_array() || v.is_string()) return !v.empty();
  return true;
}

// PEFT options that change what the adapter computes and that hyft does not run.
void refuse_unsupported(const nlohmann::json& j, const std::string& path) {
  const std::pair<const char*, const char*> refused[] = {
      {"use_dora", "DoRA (use_dora)"},
      {"rank_pattern", "rank_pattern (per-module ranks)"},
      {"alpha_pattern", "alpha_pattern (per-module alphas)"},
      {"layers_to_transform", "layers_to_transform"},
      {"layer_replication", "layer_replication"},
      {"trainable_token_indices", "trainable_token_indices (embedding adapters)"},
      {"target_parameters", "target_parameters"},
      {"lora_bias", "lora_bias"},
      {"use_qalora", "QA-LoRA (use_qalora)"},
      {"alora_invocation_tokens", "aLoRA (alora_invocation_tokens)"},
      {"fan_in_fan_out", "fan_in_fan_out"},
      {"use_bdlora", "use_bdlora"},
  };
  for (const auto& [key, what] : refused)
    HYFT_CHECK(!is_set(j, key), path, ": the adapter uses ", what, ", which hyft does not support");
  if (j.contains("bias") && !j["bias"].is_null())
    HYFT_CHECK(j["bias"] == "none", path, ": bias ", j["bias"].dump(),
               " is not supported (hyft adapters train no biases: bias \"none\")");
}

}  // namespace

LoraAdapter read_peft_adapter(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string config_path = (fs::path(dir) / "adapter_config.json").string();
  const std::string weights_path = (fs::path(dir) / "adapter_model.safetensors").string();
  HYFT_CHECK(fs::exists(config_path), dir, ": no adapter_config.json; --adapter takes a PEFT adapter folder");
  HYFT_CHECK(fs::exists(weights_path), dir, ": no adapter_model.safetensors",
             fs::exists(fs::path(dir) / "adapter_model.bin") ? " (only adapter_model.bin: save it with safetensors)" : "");
  const nlohmann::json j = io::read_json_file(config_path, "a PEFT adapter config");
  HYFT_CHECK(j.is_object(), config_path, ": not a JSON object");
  HYFT_CHECK(j.contains("peft_type") && j["peft_type"] == "LORA", config_path, ": peft_type ",
             j.contains("peft_type") ? j["peft_type"].dump() : "(missing)", " is not supported; hyft reads LORA");
  refuse_unsupported(j, config_path);

  // Each key checked by name: present where required, of the type PEFT writes.
  const auto number = [&](const char* key, std::optional<double> fallback, bool integer) {
    if (!j.contains(key) || j[key].is_null()) {
      HYFT_CHECK(fallback, config_path, ": '", key, "' is missing (PEFT writes it)");
      return *fallback;
    }
    HYFT_CHECK(integer ? j[key].is_number_integer() : j[key].is_number(), config_path, ": '", key, "' must be ",
               integer ? "a whole number" : "a number", ", got ", j[key].dump());
    return j[key].get<double>();
  };
  LoraAdapter a;
  a.settings.r = int64_t(number("r", std::nullopt, /*integer=*/true));
  a.settings.alpha = number("lora_alpha", 8.0, false);
  a.settings.dropout = number("lora_dropout", 0.0, false);
  if (j.contains("use_rslora") && !j["use_rslora"].is_null()) {
    HYFT_CHECK(j["use_rslora"].is_boolean(), config_path, ": 'use_rslora' must be true or false, got ",
               j["use_rslora"].dump());
    a.settings.use_rslora = j["use_rslora"].get<bool>();
  }
  if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
    a.base_model_name_or_path = j["base_model_name_or_path"].get<std::string>();
  std::vector<std::string> to_save;  // modules_to_save: checked below against what hyft trains whole
  if (j.contains("modules_to_save") && !j["modules_to_save"].is_null()) {
    HYFT_CHECK(j["modules_to_save"].is_array(), config_path, ": 'modules_to_save' must be a list of module names");
    for (const auto& m : j["modules_to_save"]) {
      HYFT_CHECK(m.is_string(), config_path, ": 'modules_to_save' must list module names, got ", m.dump());
      to_save.push_back(m.get<std::string>());
    }
  }
  std::set<std::string> listed;  // target_modules as a list; a regex string is checked by the keys
  if (j.contains("target_modules") && j["target_modules"].is_array())
    for (const auto& t : j["target_modules"]) {
      HYFT_CHECK(t.is_string(), config_path, ": 'target_modules' must list module names, got ", t.dump());
      listed.insert(t.get<std::string>());
    }

  io::SafetensorsFile file(weights_path);
  std::set<std::string> targets;
  for (const auto& key : file.keys()) {
    HYFT_CHECK(key.find("lora_embedding") == std::string::npos, weights_path, ": '", key,
               "' is an embedding adapter, which hyft does not support");
    HYFT_CHECK(key.find("lora_magnitude_vector") == std::string::npos, weights_path, ": '", key,
               "' belongs to DoRA, which hyft does not support");
    // base_model.model.<embed_tokens or lm_head>.weight: a module saved whole. After a
    // vocabulary resize PEFT also writes <module>.modules_to_save.weight (the same
    // trained copy) and <module>.original_module.weight (the resized base, used only
    // with the adapter disabled): the first is read as the module, the second skipped.
    std::string module_of_weight;
    bool original = false;
    for (const char* suffix : {".modules_to_save.weight", ".original_module.weight", ".weight"})
      if (module_of_weight.empty() && ends_with(key, suffix)) {
        module_of_weight = key.substr(0, key.size() - std::strlen(suffix));
        original = std::strcmp(suffix, ".original_module.weight") == 0;
      }
    bool whole = false;
    for (const auto& m : saveable_modules()) whole |= module_of_weight == kPrefix + saved_module_name(m);
    if (whole && original) continue;
    if (whole) {
      const std::string module = module_of_weight.substr(kPrefix.size());
      a.saved_modules[module] = file.tensor(key).to(at::kFloat);
      const std::string short_name = module == "model.embed_tokens" ? "embed_tokens" : module;
      if (std::find(to_save.begin(), to_save.end(), short_name) == to_save.end()) to_save.push_back(short_name);
      continue;
    }
    if (starts_with(key, kPrefix) && ends_with(key, kBase)) {
      const std::string module = key.substr(kPrefix.size(), key.size() - kPrefix.size() - kBase.size());
      HYFT_CHECK(module == kLmHead, weights_path, ": '", key, "' saves the base weight of ", module,
                 ", which hyft does not load (only lm_head's, as PEFT saves it)");
      a.base_weights[module] = file.tensor(key);
      continue;
    }
    const bool is_a = ends_with(key, kA), is_b = ends_with(key, kB);
    HYFT_CHECK(key.rfind(kPrefix, 0) == 0 && (is_a || is_b), weights_path, ": unexpected key '", key,
               "' (a LoRA adapter holds base_model.model.<module>.lora_A.weight and .lora_B.weight)");
    const std::string module = key.substr(kPrefix.size(), key.size() - kPrefix.size() - kA.size());
    const std::string target = module.substr(module.rfind('.') + 1);
    HYFT_CHECK(listed.empty() || listed.count(target), weights_path, ": '", key, "' is not in target_modules");
    targets.insert(target);
    auto& [A, B] = a.weights[module];
    (is_a ? A : B) = file.tensor(key).to(at::kFloat);
  }
  HYFT_CHECK(!a.weights.empty(), weights_path, ": holds no LoRA weights");
  for (const auto& key : file.keys())
    HYFT_CHECK(at::isfinite(file.tensor(key)).all().item<bool>(), weights_path, ": '", key,
               "' holds NaN or infinite values; the adapter is damaged (or was saved from a diverged run)");
  for (const auto& [module, w] : a.base_weights)
    HYFT_CHECK(a.weights.count(module), weights_path, ": holds the base weight of ", module,
               " but no LoRA weights for it");
  for (const auto& [module, ab] : a.weights) {
    HYFT_CHECK(ab.first.defined() && ab.second.defined(), weights_path, ": module '", module,
               "' has only one of lora_A and lora_B");
    HYFT_CHECK(ab.first.dim() == 2 && ab.first.size(0) == a.settings.r && ab.second.dim() == 2 &&
                   ab.second.size(1) == a.settings.r,
               weights_path, ": module '", module, "' has lora_A ", ab.first.sizes(), " and lora_B ",
               ab.second.sizes(), ", which do not match r = ", a.settings.r);
  }
  a.settings.targets.clear();  // in the standard order of the projections
  for (const auto& name : lora_targets_allowed())
    if (targets.count(name)) a.settings.targets.push_back(name);
  for (const auto& m : to_save)
    HYFT_CHECK(a.saved_modules.count(saved_module_name(m)), weights_path, ": modules_to_save lists '", m,
               "' but the file holds no ", kPrefix, saved_module_name(m), ".weight");
  a.settings.modules_to_save = to_save;
  validate(a.settings, config_path);
  if (a.saved_modules.size() == 2) {
    const auto& e = a.saved_modules.at("model.embed_tokens");
    const auto& h = a.saved_modules.at(kLmHead);
    HYFT_CHECK(e.dim() == 2 && h.dim() == 2 && e.size(0) == h.size(0), weights_path, ": the saved embed_tokens ",
               e.sizes(), " and lm_head ", h.sizes(), " disagree on the vocabulary");
  }
  return a;
}

void write_peft_adapter(const std::string& dir, const LoraAdapter& a) {
  nlohmann::ordered_json j;
  j["peft_type"] = "LORA";
  j["task_type"] = "CAUSAL_LM";
  j["base_model_name_or_path"] = a.base_model_name_or_path;
  j["r"] = a.settings.r;
  j["lora_alpha"] = a.settings.alpha;
  j["lora_dropout"] = a.settings.dropout;
  j["target_modules"] = a.settings.targets;
  j["use_rslora"] = a.settings.use_rslora;
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  if (a.settings.modules_to_save.empty()) j["modules_to_save"] = nullptr;
  else j["modules_to_save"] = a.settings.modules_to_save;
  j["use_dora"] = false;
  j["rank_pattern"] = nlohmann::json::object();
  j["alpha_pattern"] = nlohmann::json::object();
  j["layers_to_transform"] = nullptr;
  j["layers_pattern"] = nullptr;
  j["lora_bias"] = false;
  j["revision"] = nullptr;

  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [module, ab] : a.weights) {
    tensors.emplace_back(kPrefix + module + kA, ab.first);
    tensors.emplace_back(kPrefix + module + kB, ab.second);
  }
  for (const auto& [module, w] : a.saved_modules) tensors.emplace_back(kPrefix + module + ".weight", w);
  io::AtomicDir out(dir, /*replace=*/true);
  io::write_file_atomic(out.file("adapter_config.json"), j.dump(2) + "\n");
  io::save_safetensors(out.file("adapter_model.safetensors"), tensors, {{"format", "pt"}});
  for (const auto& [name, content] : a.extra_files) io::write_file_atomic(out.file(name), content);
  out.commit();
}

LoraAdapter adapter_from_modules(model::LlamaForCausalLMImpl& model, const LoraModules& modules,
                                 const LoraSettings& settings, const std::string& base_model_name_or_path) {
  LoraAdapter a;
  a.settings = settings;
  a.base_model_name_or_path = base_model_name_or_path;
  for (const auto& [name, m] : modules)
    a.weights[name] = {m->lora_A->weight.detach().to(at::kCPU, at::kFloat).clone(),
                       m->lora_B->weight.detach().to(at::kCPU, at::kFloat).clone()};
  for (const auto& m : settings.modules_to_save)
    a.saved_modules[saved_module_name(m)] = saved_module_weight(model, m).detach().to(at::kCPU, at::kFloat).clone();
  return a;
}

std::optional<int64_t> adapter_vocab(const LoraAdapter& adapter, int64_t base_vocab) {
  for (const auto& [module, w] : adapter.saved_modules)
    if (w.dim() == 2 && w.size(0) != base_vocab) return w.size(0);
  return std::nullopt;
}

LoraModules attach_adapter(model::LlamaForCausalLMImpl& model, const LoraAdapter& adapter,
                           const std::string& source) {
  // New tokens: the vocabulary grows first, as transformers' resize_token_embeddings
  // before PeftModel.from_pretrained; the saved weights then fill every row.
  if (const auto vocab = adapter_vocab(adapter, model.config().vocab_size)) {
    std::fprintf(stderr, "the adapter was trained with a vocabulary of %lld tokens (the base has %lld): resized\n",
                 static_cast<long long>(*vocab), static_cast<long long>(model.config().vocab_size));
    model.resize_vocab(*vocab);
  }
  std::vector<std::string> names;
  for (const auto& kv : adapter.weights) names.push_back(kv.first);
  LoraModules modules;
  try {
    modules = apply_lora(model, adapter.settings, names);
  } catch (const UserError& e) {
    fail(source, ": ", e.what(), "; is this adapter for another base model?");
  }
  at::NoGradGuard no_grad;
  for (auto& [name, m] : modules) {
    const auto& [A, B] = adapter.weights.at(name);
    const auto& W = m->base_layer->weight;  // (out, in)
    HYFT_CHECK(A.size(1) == W.size(1) && B.size(0) == W.size(0), source, ": '", kPrefix, name,
               ".lora_A/B' have shapes ", A.sizes(), " and ", B.sizes(), " but the model's ", name,
               " is ", W.sizes(), " (out, in); the adapter was trained for another base model");
    m->lora_A->weight.copy_(A);
    m->lora_B->weight.copy_(B);
    const auto base = adapter.base_weights.find(name);
    if (base != adapter.base_weights.end()) {
      HYFT_CHECK(base->second.sizes() == W.sizes(), source, ": '", kPrefix, name, kBase, "' has shape ",
                 base->second.sizes(), " but the model's is ", W.sizes());
      m->base_layer->weight.copy_(base->second);
    }
  }
  for (const auto& m : adapter.settings.modules_to_save) {
    at::Tensor w = saved_module_weight(model, m);
    const at::Tensor& saved = adapter.saved_modules.at(saved_module_name(m));
    HYFT_CHECK(saved.sizes() == w.sizes(), source, ": '", kPrefix, saved_module_name(m), ".weight' has shape ",
               saved.sizes(), " but the model's is ", w.sizes(), "; the adapter was trained for another base model");
    w.copy_(saved);
  }
  return modules;
}

}  // namespace hyft::adapters
