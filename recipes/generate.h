// The generation recipe behind `hyft generate`: a model (and adapter) continues
// one prompt, or every record of a JSONL file (rendered by its template up to the
// completion), with a KV cache and transformers' sampling rules; an optional
// audit log gets every prompt and output.
#pragma once

#include "data/records.h"
#include "generate/generator.h"
#include "recipes/model_setup.h"

#include <optional>
#include <string>

namespace hyft::recipes {

struct GenerateOptions {
  ModelOptions model;
  std::optional<std::string> prompt;  // used as it is, after BOS (or as a user turn: prompt_as_user)
  bool prompt_as_user = false;        // render --prompt as a user message in records.chat_template
  std::string input_file;   // JSONL of prompts (exactly one of prompt and input_file)
  std::string output_file;  // where input results go ("" = stdout)
  std::string log_file;     // audit trail, appended ("" = none)
  bool force = false;       // replace an existing output_file
  data::RecordOptions records;
  generate::GenerateSettings settings;
};

// Checks the settings' ranges, naming the flags.
void validate(const GenerateOptions& options);

// Prints the completion of `prompt`, or one JSON line per input record; returns
// the exit code.
int run_generate(const GenerateOptions& options);

}  // namespace hyft::recipes
