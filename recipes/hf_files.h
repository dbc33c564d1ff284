// The files that make a model folder complete for transformers beyond its
// weights: tokenizer_config.json and special_tokens_map.json for a SentencePiece
// tokenizer (so AutoTokenizer gives hyft's ids, BOS added, no "▁" after special
// tokens), the chat template used in training as Jinja, generation_config.json,
// and hyft.json, the settings that travel with what was trained (the hybrid
// attention rule and the chat template), written beside adapters and models and
// read back by eval, generate and export.
#pragma once

#include "attention/hybrid_attention.h"
#include "model/llama_config.h"
#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hyft::recipes {

// What a trained adapter or model records about its training (hyft.json).
struct TrainedWith {
  attention::HybridSettings attention;  // full causal when W = 0
  std::string chat_template;            // the template messages records were trained with ("" = none)
  std::vector<std::string> added_tokens;  // special tokens added to the tokenizer (ids after its pieces)
};
inline const char* kTrainedWithFile = "hyft.json";
std::string to_text(const TrainedWith& t);
// dir/hyft.json, or nullopt when the folder has none (PEFT's adapters, other models).
std::optional<TrainedWith> read_trained_with(const std::string& dir);

// tokenizer_config.json, special_tokens_map.json and generation_config.json for
// `tok` (its file ships as tokenizer.model; its added tokens as
// added_tokens_decoder entries after the pieces), with `chat_template` ("" = none)
// as Jinja; `config` gives generation_config.json its token ids.
std::map<std::string, std::string> hf_tokenizer_files(const tokenizer::Tokenizer& tok, const std::string& chat_template,
                                                      const nlohmann::json& config);

// What a model folder written from `source_dir` (export, full fine-tuning) gets
// for what was trained with `t`: config.json with the hybrid rule (sliding_window
// and global_ratio, which hyft reads back and transformers keeps) when it is not
// plain causal; hyft.json; and, when the source has a SentencePiece
// tokenizer.model, tokenizer_config.json carrying the chat template used in
// training (the source's own file kept otherwise, or made when it has none).
struct TrainedFolder {
  nlohmann::ordered_json config;
  std::map<std::string, std::string> files;
};
TrainedFolder trained_folder(const std::string& source_dir, const TrainedWith& t);

// What an adapter trained with added tokens carries beside PEFT's files: the
// tokenizer (tokenizer.model and the files above), so that AutoTokenizer on the
// adapter folder gives the ids training used.
std::map<std::string, std::string> adapter_tokenizer_files(const tokenizer::Tokenizer& tok, const TrainedWith& t,
                                                           const model::LlamaConfig& config);

// The tokenizer of `o`'s model with the tokens the adapter (o.adapter_dir) was
// trained with added: from its hyft.json, else its tokenizer_config.json.
void add_adapter_tokens(tokenizer::Tokenizer& tok, const std::string& adapter_dir);

}  // namespace hyft::recipes
