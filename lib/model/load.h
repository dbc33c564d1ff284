// Loading a Hugging Face model folder into a LlamaForCausalLM: config.json, then
// every weight by its own name, strictly (a missing or unexpected key, or a wrong
// shape, is a UserError naming the key), cast to the dtype the run asks for.
#pragma once

#include "model/llama.h"

#include <optional>
#include <string>

namespace hyft::model {

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;
  at::Device device = at::kCPU;
  // Hybrid attention flags; unset falls back to config.json's
  // sliding_window / global_ratio, and both absent to full causal attention.
  std::optional<int64_t> window_size;
  std::optional<double> global_ratio;
};

LlamaForCausalLM load_pretrained(const std::string& folder, const LoadOptions& options);

// The hybrid attention settings from the flags, else config.json, else full attention.
attention::HybridSettings resolve_attention_settings(const LlamaConfig& config,
                                                     const LoadOptions& options);

}  // namespace hyft::model
