// The export recipe behind `hyft export`: a base model folder plus a PEFT LoRA
// adapter -> a merged
// Hugging Face folder (config.json with the output torch_dtype, safetensors,
// sharded with an index above the shard size, the tokenizer files; never the
// adapter's files), written to a temporary folder and renamed into place.
#pragma once

#include "adapters/peft_format.h"
#include "quant/quantized_linear.h"

#include <optional>
#include <string>

namespace hyft::recipes {

struct ExportOptions {
  std::string model_dir, adapter_dir, output_dir;
  std::string dtype;               // fp32, bf16 or fp16; "" = the base config's torch_dtype
  std::string shard_size = "5GB";  // largest safetensors file before sharding
  bool force = false;              // replace a non-empty output folder
  // An adapter trained over a quantized base (--quantize nf4|int8) merges over the
  // base's quantize-dequantize round trip, the weights it learned against, as PEFT
  // merges into a 4-bit base; the output is full precision either way.
  std::string quantize = "none";
  bool progress = false;
};

struct ExportSummary {
  int64_t tensors = 0, merged = 0, shards = 0, bytes = 0;
  at::ScalarType dtype = at::kFloat;
};

ExportSummary run_export(const ExportOptions& options);

}  // namespace hyft::recipes
