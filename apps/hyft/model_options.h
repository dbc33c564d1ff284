// The model options shared by eval, generate and finetune: --model, --device,
// --precision, the hybrid attention flags and (where it applies) --adapter.
#pragma once

#include "model/load.h"

#include <cxxopts.hpp>

namespace hyft::app {

void add_model_options(cxxopts::Options& opts, bool with_adapter);
// Device, dtype ("auto": bf16 on a GPU, fp32 on CPU) and attention flags.
model::LoadOptions load_options_from(const cxxopts::ParseResult& args);
// --model loaded with those options, with --adapter attached when given.
model::LlamaForCausalLM load_model(const cxxopts::ParseResult& args, const model::LoadOptions& load);

}  // namespace hyft::app
