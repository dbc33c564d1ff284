// The configuration of a LlamaForCausalLM as read from a Hugging Face config.json
// Parsing is strict about what hyft cannot run: another architecture or
// an unsupported option is a UserError naming the key.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hyft::model {

enum class RopeType { Default, Linear, Dynamic, Llama3 };

struct RopeScaling {
  RopeType type = RopeType::Default;
  double factor = 1.0;
  // llama3 only
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 0;
};

struct LlamaConfig {
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;         // D
  int64_t intermediate_size = 11008;  // F
  int64_t num_hidden_layers = 32;     // L
  int64_t num_attention_heads = 32;   // H
  int64_t num_key_value_heads = 32;   // Hkv
  int64_t head_dim = 128;             // Dh (explicit, or D / H)
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  std::optional<int64_t> bos_token_id, pad_token_id;
  std::vector<int64_t> eos_token_ids;
  std::string torch_dtype = "float32";
  std::string architecture = "LlamaForCausalLM";
  // Hybrid attention from config.json: sliding_window / global_ratio.
  std::optional<int64_t> sliding_window;
  std::optional<double> global_ratio;
};

// Parses a config.json object; `source` names the file in error messages.
LlamaConfig parse_llama_config(const nlohmann::json& j, const std::string& source);
LlamaConfig load_llama_config(const std::string& config_json_path);

}  // namespace hyft::model
