#include "model/load.h"

#include "attention/backend.h"

#include "common/error.h"
#include "common/strings.h"
#include "io/checkpoint_files.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <set>

namespace hyft::model {

namespace {

// Keys that a checkpoint may carry without a parameter to receive them: rotary
// caches of old checkpoints, and lm_head.weight beside a tied embedding.
bool ignorable(const std::string& key, const LlamaConfig& config) {
  if (ends_with(key, ".rotary_emb.inv_freq")) return true;
  return config.tie_word_embeddings && key == "lm_head.weight";
}

}  // namespace

attention::HybridSettings resolve_attention_settings(const LlamaConfig& config,
                                                     const LoadOptions& options) {
  attention::HybridSettings s;
  s.window_size = options.window_size.value_or(config.sliding_window.value_or(0));
  s.global_ratio = options.global_ratio.value_or(config.global_ratio.value_or(0.0));
  attention::validate(s, options.window_size || options.global_ratio ? "--window-size/--global-ratio"
                                                                      : "config.json");
  return s;
}

LlamaForCausalLM load_pretrained(const std::string& folder, const LoadOptions& options) {
  namespace fs = std::filesystem;
  HYFT_CHECK(fs::is_directory(folder), folder, ": not a folder; --model takes a Hugging Face "
             "model folder (config.json + model.safetensors)");
  const LlamaConfig config = load_llama_config((fs::path(folder) / "config.json").string());
  HYFT_CHECK(at::isFloatingType(options.dtype), "model dtype must be floating point");
  io::CheckpointFiles files(folder);

  LlamaForCausalLM model(config, at::TensorOptions().dtype(options.dtype).device(options.device));
  model->attention_settings = resolve_attention_settings(config, options);
  model->attention_backend = &attention::default_backend(options.device);

  at::NoGradGuard no_grad;
  std::set<std::string> expected;
  for (auto& item : model->named_parameters()) {
    const std::string& key = item.key();
    expected.insert(key);
    HYFT_CHECK(files.contains(key), folder, ": weight '", key,
               "' is missing from the checkpoint; the weights do not match config.json");
    const io::TensorEntry& e = files.entry(key);
    HYFT_CHECK(e.dtype == "F32" || e.dtype == "F16" || e.dtype == "BF16", files.file_of(key),
               ": weight '", key, "' has dtype ", e.dtype, "; hyft reads F32, F16 and BF16");
    at::Tensor& param = item.value();
    HYFT_CHECK(param.sizes().vec() == e.shape, files.file_of(key), ": weight '", key,
               "' has shape ", c10::IntArrayRef(e.shape), " but config.json implies ", param.sizes());
    const at::Tensor w = files.tensor(key);
    HYFT_CHECK(at::isfinite(w).all().item<bool>(), files.file_of(key), ": weight '", key,
               "' holds NaN or infinite values; the model file is damaged (or was saved from a diverged run)");
    param.copy_(w);
  }
  for (const auto& key : files.keys())
    HYFT_CHECK(expected.count(key) || ignorable(key, config), files.file_of(key),
               ": unexpected weight '", key, "' (not part of a ", config.architecture,
               " with this config.json)");
  return model;
}

}  // namespace hyft::model
