// The settings of a LoRA adapter: which projections it wraps, its rank, alpha,
// dropout and the rsLoRA switch, the scaling they imply, and the whole modules it
// trains beside the adapter (PEFT's modules_to_save: embed_tokens, lm_head).
#pragma once

#include <cmath>
#include <string>
#include <vector>

namespace hyft::adapters {

// The projections of a decoder layer, in order: what `--targets all` wraps.
inline const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};
  return names;
}

// The output projection, which a LoRA adapter may wrap too (PEFT's name; its
// module is "lm_head"). Not part of `all`, as PEFT's all-linear leaves it out.
inline const std::string kLmHead = "lm_head";

// Every target a LoRA adapter may name: the layer projections, then lm_head.
inline std::vector<std::string> lora_targets_allowed() {
  auto names = lora_target_names();
  names.push_back(kLmHead);
  return names;
}

// q/k/v/o_proj sit in self_attn; gate/up/down_proj in mlp.
inline bool is_attention_projection(const std::string& name) {
  return name == "q_proj" || name == "k_proj" || name == "v_proj" || name == "o_proj";
}

// "model.layers.N.self_attn.q_proj": the module name of a projection in layer N.
inline std::string projection_module_name(size_t layer, const std::string& projection) {
  return "model.layers." + std::to_string(layer) +
         (is_attention_projection(projection) ? ".self_attn." : ".mlp.") + projection;
}

// Modules an adapter may train whole (PEFT's modules_to_save), by PEFT's short
// name, and their module names in the model: what new tokens need to be learned.
inline const std::vector<std::string>& saveable_modules() {
  static const std::vector<std::string> names = {"embed_tokens", "lm_head"};
  return names;
}
inline std::string saved_module_name(const std::string& short_name) {
  return short_name == "embed_tokens" ? "model.embed_tokens" : short_name;
}

struct LoraSettings {
  std::vector<std::string> targets = {"q_proj", "v_proj"};
  std::vector<std::string> modules_to_save;  // embed_tokens, lm_head: trained whole
  int64_t r = 16;
  double alpha = 32.0;
  double dropout = 0.1;
  bool use_rslora = false;

  // alpha / r, or alpha / sqrt(r) with rsLoRA.
  double scaling() const { return use_rslora ? alpha / std::sqrt(double(r)) : alpha / double(r); }
};

// Checks r > 0, alpha > 0, 0 <= dropout < 1, that every target is a known
// projection and every saved module one of saveable_modules() that is not also a
// LoRA target; `source` names the flag or file in the error.
void validate(const LoraSettings& s, const std::string& source);

// "q_proj,v_proj" -> {"q_proj", "v_proj"}; "all" -> every projection.
std::vector<std::string> parse_targets(const std::string& text, const std::string& source);
// "embed_tokens,lm_head" -> the list, checked.
std::vector<std::string> parse_modules_to_save(const std::string& text, const std::string& source);

}  // namespace hyft::adapters
