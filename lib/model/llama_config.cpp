#include "model/llama_config.h"

#include "common/error.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

#include <fstream>

namespace hyft::model {

namespace {

// Typed reads of config.json keys; a wrong type or range names the key.
class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& j, const std::string& source) : j_(j), source_(source) {}

  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  int64_t positive_int(const char* key, std::optional<int64_t> fallback = std::nullopt) const {
    if (!has(key)) {
      HYFT_CHECK(fallback, source_, ": missing key '", key, "'");
      return *fallback;
    }
    const auto& v = j_[key];
    HYFT_CHECK(v.is_number_integer() && v.get<int64_t>() > 0, source_, ": '", key,
               "' must be a positive integer, got ", v.dump());
    return v.get<int64_t>();
  }

  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    HYFT_CHECK(j_[key].is_number(), source_, ": '", key, "' must be a number, got ",
               j_[key].dump());
    return j_[key].get<double>();
  }

  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    HYFT_CHECK(j_[key].is_boolean(), source_, ": '", key, "' must be true or false, got ",
               j_[key].dump());
    return j_[key].get<bool>();
  }

  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    HYFT_CHECK(j_[key].is_string(), source_, ": '", key, "' must be a string, got ", j_[key].dump());
    return j_[key].get<std::string>();
  }

  std::optional<int64_t> token_id(const char* key) const {
    if (!has(key)) return std::nullopt;
    HYFT_CHECK(j_[key].is_number_integer(), source_, ": '", key, "' must be an integer");
    return j_[key].get<int64_t>();
  }

 private:
  const nlohmann::json& j_;
  const std::string& source_;
};

RopeScaling parse_rope_scaling(const nlohmann::json& r, const std::string& source,
                               const char* key) {
  RopeScaling out;
  HYFT_CHECK(r.is_object(), source, ": '", key, "' must be an object or null");
  ConfigReader rr(r, source);
  const std::string type = rr.string("rope_type", rr.string("type", "default"));
  if (type == "default") return out;
  if (type == "linear") out.type = RopeType::Linear;
  else if (type == "dynamic") out.type = RopeType::Dynamic;
  else if (type == "llama3") out.type = RopeType::Llama3;
  else
    fail(source, ": ", key, " type '", type,
         "' is not supported (hyft supports default, linear, dynamic, llama3)");
  out.factor = rr.number("factor", 0.0);
  HYFT_CHECK(out.factor >= 1.0, source, ": ", key, ".factor must be >= 1, got ", out.factor);
  if (out.type == RopeType::Llama3) {
    out.low_freq_factor = rr.number("low_freq_factor", 1.0);
    out.high_freq_factor = rr.number("high_freq_factor", 4.0);
    out.original_max_position_embeddings = rr.positive_int("original_max_position_embeddings");
    HYFT_CHECK(out.high_freq_factor > out.low_freq_factor, source, ": ", key,
               ".high_freq_factor must exceed low_freq_factor");
  }
  return out;
}

}  // namespace

LlamaConfig parse_llama_config(const nlohmann::json& j, const std::string& source) {
  HYFT_CHECK(j.is_object(), source, ": not a JSON object");
  ConfigReader r(j, source);
  LlamaConfig c;

  std::string arch;
  if (r.has("architectures")) {
    HYFT_CHECK(j["architectures"].is_array() && !j["architectures"].empty() &&
                   j["architectures"][0].is_string(),
               source, ": 'architectures' must be a list of names");
    arch = j["architectures"][0].get<std::string>();
  } else if (r.has("model_type")) {
    const auto mt = r.string("model_type", "");
    arch = mt == "llama" ? "LlamaForCausalLM" : mt == "mistral" ? "MistralForCausalLM" : mt;
  }
  HYFT_CHECK(arch == "LlamaForCausalLM" || arch == "MistralForCausalLM", source,
             ": architecture '", arch,
             "' is not supported; hyft runs LlamaForCausalLM (Llama, DeepSeek-LLM, "
             "DeepSeek-Coder 1.x, TinyLlama) and MistralForCausalLM");
  c.architecture = arch;

  c.vocab_size = r.positive_int("vocab_size");
  c.hidden_size = r.positive_int("hidden_size");
  c.intermediate_size = r.positive_int("intermediate_size");
  c.num_hidden_layers = r.positive_int("num_hidden_layers");
  c.num_attention_heads = r.positive_int("num_attention_heads");
  c.num_key_value_heads = r.positive_int("num_key_value_heads", c.num_attention_heads);
  HYFT_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, source,
             ": num_attention_heads (", c.num_attention_heads,
             ") must be a multiple of num_key_value_heads (", c.num_key_value_heads, ")");
  if (r.has("head_dim")) {
    c.head_dim = r.positive_int("head_dim");
  } else {
    HYFT_CHECK(c.hidden_size % c.num_attention_heads == 0, source, ": hidden_size (",
               c.hidden_size, ") is not a multiple of num_attention_heads; set head_dim");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  HYFT_CHECK(c.head_dim % 2 == 0, source, ": head_dim must be even for rotary embeddings");
  c.max_position_embeddings = r.positive_int("max_position_embeddings", 2048);
  c.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  c.attention_bias = r.boolean("attention_bias", false);
  c.mlp_bias = r.boolean("mlp_bias", false);

  // Rotary embedding: the classic keys (rope_theta + rope_scaling) or the newer
  // rope_parameters object that carries both.
  c.rope_theta = r.number("rope_theta", 10000.0);
  if (r.has("rope_parameters")) {
    const auto& rp = j["rope_parameters"];
    c.rope_scaling = parse_rope_scaling(rp, source, "rope_parameters");
    c.rope_theta = ConfigReader(rp, source).number("rope_theta", c.rope_theta);
  } else if (r.has("rope_scaling")) {
    c.rope_scaling = parse_rope_scaling(j["rope_scaling"], source, "rope_scaling");
  }
  HYFT_CHECK(c.rope_theta > 0, source, ": rope_theta must be positive");
  if (r.has("partial_rotary_factor"))
    HYFT_CHECK(r.number("partial_rotary_factor", 1.0) == 1.0, source,
               ": partial_rotary_factor other than 1 is not supported");
  if (r.has("hidden_act"))
    HYFT_CHECK(j["hidden_act"] == "silu", source, ": hidden_act ", j["hidden_act"].dump(),
               " is not supported (Llama uses silu)");

  c.bos_token_id = r.token_id("bos_token_id");
  c.pad_token_id = r.token_id("pad_token_id");
  if (r.has("eos_token_id")) {
    const auto& e = j["eos_token_id"];
    if (e.is_array())
      for (const auto& x : e) {
        HYFT_CHECK(x.is_number_integer(), source, ": 'eos_token_id' must be an integer or a list of integers, got ",
                   e.dump());
        c.eos_token_ids.push_back(x.get<int64_t>());
      }
    else
      c.eos_token_ids.push_back(r.token_id("eos_token_id").value());
  }
  for (const char* key : {"torch_dtype", "dtype"})
    if (r.has(key) && j[key].is_string()) c.torch_dtype = j[key].get<std::string>();

  if (r.has("sliding_window")) {
    const auto& w = j["sliding_window"];
    HYFT_CHECK(w.is_number_integer() && w.get<int64_t>() >= 0, source,
               ": 'sliding_window' must be a non-negative integer or null");
    c.sliding_window = w.get<int64_t>();
  }
  if (r.has("global_ratio")) {
    const double g = r.number("global_ratio", 0.0);
    HYFT_CHECK(g >= 0.0 && g < 1.0, source, ": 'global_ratio' must be in [0, 1), got ", g);
    c.global_ratio = g;
  }
  return c;
}

LlamaConfig load_llama_config(const std::string& path) {
  const nlohmann::json j = io::read_json_file(path, "a model folder needs config.json");
  try {
    return parse_llama_config(j, path);
  } catch (const nlohmann::json::exception&) {  // every key is read through a typed check; a safety net
    fail(path, ": a key has a value of the wrong type; compare the file with the model's original config.json");
  }
}

}  // namespace hyft::model
