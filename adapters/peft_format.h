// PEFT's LoRA files, read and written: adapter_config.json and
// adapter_model.safetensors with keys base_model.model.<module>.lora_A.weight (r, in)
// and .lora_B.weight (out, r), and the whole weights of the modules_to_save
// (embed_tokens, lm_head) as base_model.model.<module>.weight. What hyft does not
// support (DoRA, embedding adapters, rank_pattern, ...) is refused by name.
#pragma once

#include "adapters/lora_linear.h"

#include <map>
#include <optional>
#include <string>
#include <utility>

namespace hyft::adapters {

struct LoraAdapter {
  LoraSettings settings;
  std::string base_model_name_or_path;
  // module name ("model.layers.0.self_attn.q_proj") -> (A (r, in), B (out, r))
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> weights;
  // Whole base weights PEFT saves beside the adapter for embedding-like modules
  // it wraps (lm_head: base_model.model.lm_head.base_layer.weight). PEFT loads
  // them over the base model's, so hyft does too. Module name -> (out, in).
  std::map<std::string, at::Tensor> base_weights;
  // Whole weights of the modules_to_save (and of embeddings PEFT saves after a
  // vocabulary resize), by module name ("model.embed_tokens", "lm_head") -> (V, D).
  // Their row count is the vocabulary the adapter was trained with.
  std::map<std::string, at::Tensor> saved_modules;
  // Files written beside PEFT's two (name -> content); PEFT ignores them.
  std::map<std::string, std::string> extra_files;
};

LoraAdapter read_peft_adapter(const std::string& dir);
// Writes dir/adapter_config.json and dir/adapter_model.safetensors atomically
// (dir is replaced as a whole).
void write_peft_adapter(const std::string& dir, const LoraAdapter& adapter);

// The adapter held by a model's LoRA modules (A and B copied to CPU float32) and
// its modules to save.
LoraAdapter adapter_from_modules(model::LlamaForCausalLMImpl& model, const LoraModules& modules,
                                 const LoraSettings& settings, const std::string& base_model_name_or_path);

// The vocabulary an adapter was trained with when it differs from `base_vocab`
// (its saved embed_tokens or lm_head has another row count), else nullopt.
std::optional<int64_t> adapter_vocab(const LoraAdapter& adapter, int64_t base_vocab);

// Resizes the vocabulary when the adapter's differs (new tokens), wraps the modules
// `adapter` names and copies its weights in; a shape that does not fit the model
// (an adapter for another base) is a UserError naming the key.
LoraModules attach_adapter(model::LlamaForCausalLMImpl& model, const LoraAdapter& adapter,
                           const std::string& source);

}  // namespace hyft::adapters
