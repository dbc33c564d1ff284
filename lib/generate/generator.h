// Text generation with a KV cache: the prompt is encoded once, then one
// token at a time attends over the cache, until EOS or max_new_tokens. One
// request through the serving engine (engine.h), so both decode alike.
#pragma once

#include "generate/sampling.h"
#include "model/llama.h"

#include <cstdint>
#include <vector>

namespace hyft::generate {

struct GenerateSettings {
  SamplingSettings sampling;
  int64_t max_new_tokens = 200;
  std::vector<int64_t> stop_ids;  // EOS ids; generation stops after emitting one
  uint64_t seed = 0;
};

struct Generation {
  std::vector<int64_t> tokens;  // generated ids (the stop token included when hit)
  bool stopped = false;         // ended at a stop id rather than max_new_tokens
};

Generation generate(model::LlamaForCausalLMImpl& model, const std::vector<int64_t>& prompt,
                    const GenerateSettings& settings);

}  // namespace hyft::generate
