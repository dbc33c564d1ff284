// `hyft export` (SPEC 6): a base model folder plus a LoRA adapter -> a merged
// Hugging Face folder (config.json with the output torch_dtype, safetensors,
// sharded with an index above the shard size, the tokenizer files; never the
// adapter's files), written to a temporary folder and renamed into place.
#pragma once

#include "adapters/peft_format.h"

#include <optional>
#include <string>

namespace hyft::adapters {

struct ExportOptions {
  std::optional<at::ScalarType> dtype;  // default: the base config's torch_dtype
  int64_t shard_bytes = 5'000'000'000;
  bool force = false;                   // replace a non-empty output folder
  bool progress = false;
};

struct ExportSummary {
  int64_t tensors = 0, merged = 0, shards = 0, bytes = 0;
  at::ScalarType dtype = at::kFloat;
};

ExportSummary export_merged(const std::string& model_dir, const LoraAdapter& adapter,
                            const std::string& out_dir, const ExportOptions& options);

}  // namespace hyft::adapters
