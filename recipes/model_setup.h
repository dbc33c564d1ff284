// The model a recipe runs, as every command describes it: the folder, the device
// and precision, the hybrid attention rule, an adapter to apply (eval, generate)
// and the tokenizer. Resolving "auto" and loading happen here, once for all recipes.
#pragma once

#include "data/records.h"
#include "model/load.h"
#include "tokenizer/tokenizer.h"

#include <memory>
#include <optional>
#include <string>

namespace hyft::recipes {

struct ModelOptions {
  std::string model_dir;
  std::string device = "auto";     // auto (cuda:0 when there is a GPU), cpu, cuda, cuda:N
  std::string precision = "auto";  // auto (bf16 on a GPU, fp32 on CPU), fp32, bf16, fp16
  std::optional<int64_t> window_size;  // unset: config.json's sliding_window, else unlimited
  std::optional<double> global_ratio;  // unset: config.json's global_ratio, else none
  std::string adapter_dir;             // a PEFT LoRA adapter applied unmerged ("" = none)
  std::string tokenizer_file;          // "" = the model folder's tokenizer.model
  std::string quantize = "none";       // the frozen base's projections: none, nf4, nf4-dq, int8 or int4
};

// --quantize: the base's layer projections as quantized codes (after adapters
// are attached or applied); a message on stderr says how much memory they take.
void quantize(model::LlamaForCausalLMImpl& model, const ModelOptions& o);

// Device, compute dtype ("auto" resolved) and attention flags.
model::LoadOptions load_options(const ModelOptions& o);
// The model in the options' device and dtype, with its adapter attached (and the
// adapter's recorded attention rule unless a flag overrides it). --global-ratio
// given where no window applies is a UserError: global tokens only matter inside one.
model::LlamaForCausalLM load_model(const ModelOptions& o, const model::LoadOptions& load);
// --tokenizer, else the model folder's tokenizer.model, else null (pre-tokenized
// data); with the tokens the adapter was trained with added.
std::unique_ptr<tokenizer::Tokenizer> find_tokenizer(const ModelOptions& o);

// --chat-template model: reads the chat template of the tokenizer's folder (the
// --tokenizer file's folder when given, else the model folder) into `records`;
// nothing for the built-in templates.
void resolve_chat_template(data::RecordOptions& records, const ModelOptions& o);

}  // namespace hyft::recipes
