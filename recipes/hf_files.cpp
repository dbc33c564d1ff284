#include "recipes/hf_files.h"

#include "common/error.h"
#include "data/records.h"
#include "io/json_file.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hyft::recipes {

std::string to_text(const TrainedWith& t) {
  nlohmann::ordered_json j;
  j["window_size"] = t.attention.window_size;
  j["global_ratio"] = t.attention.global_ratio;
  j["chat_template"] = t.chat_template;
  if (!t.added_tokens.empty()) j["added_tokens"] = t.added_tokens;
  return j.dump(2) + "\n";
}

std::optional<TrainedWith> read_trained_with(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kTrainedWithFile).string();
  if (!std::filesystem::exists(path)) return std::nullopt;
  const nlohmann::json j = io::read_json_file(path, "the settings hyft trained with");
  TrainedWith t;
  const auto number = [&](const char* key, auto fallback) {
    if (!j.contains(key)) return fallback;
    HYFT_CHECK(j[key].is_number(), path, ": '", key, "' must be a number, got ", j[key].dump());
    return j[key].get<decltype(fallback)>();
  };
  t.attention.window_size = number("window_size", int64_t(0));
  t.attention.global_ratio = number("global_ratio", 0.0);
  attention::validate(t.attention, path.c_str());
  if (j.contains("chat_template")) {
    HYFT_CHECK(j["chat_template"].is_string(), path, ": 'chat_template' must be a string");
    t.chat_template = j["chat_template"].get<std::string>();
    if (!t.chat_template.empty()) data::validate_chat_template(t.chat_template, path + ": chat_template");
  }
  if (j.contains("added_tokens")) {
    const auto& a = j["added_tokens"];
    HYFT_CHECK(a.is_array(), path, ": 'added_tokens' must be a list of strings");
    for (const auto& x : a) {
      HYFT_CHECK(x.is_string() && !x.get<std::string>().empty(), path, ": 'added_tokens' must list non-empty strings");
      t.added_tokens.push_back(x.get<std::string>());
    }
  }
  return t;
}

namespace {

// transformers' entry for a special token added to the vocabulary.
nlohmann::ordered_json added_token_entry(const std::string& text) {
  return {{"content", text}, {"lstrip", false}, {"normalized", false}, {"rstrip", false},
          {"single_word", false}, {"special", true}};
}

void add_added_tokens(nlohmann::ordered_json& tokenizer_config, nlohmann::ordered_json& special_map,
                      const tokenizer::Tokenizer& tok) {
  if (tok.added_tokens().empty()) return;
  auto& decoder = tokenizer_config["added_tokens_decoder"];
  if (!decoder.is_object()) decoder = nlohmann::ordered_json::object();
  nlohmann::ordered_json extra = nlohmann::ordered_json::array();
  for (const auto& t : tok.added_tokens()) {
    decoder[std::to_string(t.id)] = added_token_entry(t.content);
    extra.push_back(t.content);
  }
  tokenizer_config["additional_special_tokens"] = extra;
  special_map["additional_special_tokens"] = extra;
}

}  // namespace

std::map<std::string, std::string> hf_tokenizer_files(const tokenizer::Tokenizer& tok, const std::string& chat_template,
                                                      const nlohmann::json& config) {
  nlohmann::ordered_json special;
  if (tok.bos_id()) special["bos_token"] = tok.piece(*tok.bos_id());
  if (tok.eos_id()) special["eos_token"] = tok.piece(*tok.eos_id());
  if (tok.unk_id()) special["unk_token"] = tok.piece(*tok.unk_id());
  nlohmann::ordered_json tc = {{"tokenizer_class", "LlamaTokenizer"}};
  for (const auto& [k, v] : special.items()) tc[k] = v;
  tc["add_bos_token"] = tok.bos_id().has_value();
  tc["add_eos_token"] = false;
  tc["legacy"] = false;  // no "▁" after special tokens, as hyft encodes chat records
  tc["clean_up_tokenization_spaces"] = false;
  if (config.contains("max_position_embeddings")) tc["model_max_length"] = config["max_position_embeddings"];
  if (!chat_template.empty() && chat_template != "model") tc["chat_template"] = data::chat_template_jinja(chat_template);
  add_added_tokens(tc, special, tok);
  nlohmann::ordered_json gen = {{"_from_model_config", true}};
  if (tok.bos_id()) gen["bos_token_id"] = *tok.bos_id();
  if (config.contains("eos_token_id")) gen["eos_token_id"] = config["eos_token_id"];
  else if (tok.eos_id()) gen["eos_token_id"] = *tok.eos_id();
  return {{"tokenizer_config.json", tc.dump(2) + "\n"},
          {"special_tokens_map.json", special.dump(2) + "\n"},
          {"generation_config.json", gen.dump(2) + "\n"}};
}

TrainedFolder trained_folder(const std::string& source_dir, const TrainedWith& t) {
  namespace fs = std::filesystem;
  const fs::path src(source_dir);
  TrainedFolder out;
  out.config = io::read_ordered_json_file((src / "config.json").string(), "the model config");
  if (t.attention.window_size > 0) {
    out.config["sliding_window"] = t.attention.window_size;
    out.config["global_ratio"] = t.attention.global_ratio;
  }
  out.files[kTrainedWithFile] = to_text(t);
  if (!fs::exists(src / "tokenizer.model")) return out;
  tokenizer::Tokenizer tok = tokenizer::load_tokenizer(source_dir);
  tok.add_special_tokens(t.added_tokens);
  auto made = hf_tokenizer_files(tok, t.chat_template, nlohmann::json::parse(out.config.dump()));
  const bool adds = !t.added_tokens.empty();
  for (auto& [name, content] : made) {
    if (!fs::exists(src / name)) {
      out.files[name] = std::move(content);
    } else if ((name == "tokenizer_config.json" || name == "special_tokens_map.json") &&
               (!t.chat_template.empty() || adds)) {
      auto own = io::read_ordered_json_file((src / name).string(), "the tokenizer config");
      nlohmann::ordered_json unused;
      if (name == "tokenizer_config.json") {
        if (!t.chat_template.empty() && t.chat_template != "model")  // "model": the folder's own stays
          own["chat_template"] = data::chat_template_jinja(t.chat_template);
        add_added_tokens(own, unused, tok);
      } else {
        add_added_tokens(unused, own, tok);
      }
      out.files[name] = own.dump(2) + "\n";
    }
  }
  return out;
}

std::map<std::string, std::string> adapter_tokenizer_files(const tokenizer::Tokenizer& tok, const TrainedWith& t,
                                                           const model::LlamaConfig& config) {
  nlohmann::json c = {{"max_position_embeddings", config.max_position_embeddings}};
  if (!config.eos_token_ids.empty()) c["eos_token_id"] = config.eos_token_ids.size() == 1 ?
      nlohmann::json(config.eos_token_ids[0]) : nlohmann::json(config.eos_token_ids);
  auto files = hf_tokenizer_files(tok, t.chat_template, c);
  files.erase("generation_config.json");  // the base model's
  std::ifstream in(tok.path(), std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  files["tokenizer.model"] = bytes.str();
  return files;
}

void add_adapter_tokens(tokenizer::Tokenizer& tok, const std::string& adapter_dir) {
  if (adapter_dir.empty()) return;
  const auto trained = read_trained_with(adapter_dir);
  const auto added = trained ? trained->added_tokens : tokenizer::read_added_tokens(adapter_dir, tok.piece_count());
  if (added.empty()) return;
  tok.add_special_tokens(added);
  std::fprintf(stderr, "the adapter's %zu added token(s) are in the tokenizer (ids from %lld)\n", added.size(),
               static_cast<long long>(tok.piece_count()));
}

}  // namespace hyft::recipes
