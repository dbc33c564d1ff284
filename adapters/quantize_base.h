// --quantize: the frozen base's layer projections (q/k/v/o/gate/up/down_proj of
// every layer) kept as quantized codes (quant/quantized_linear.h), also those
// wrapped by LoRA adapters, whose own A and B stay as they are. Embeddings, norms
// and lm_head keep their dtype. Called after adapters are attached or applied
// (their shapes are read from the dense weights).
#pragma once

#include "model/llama.h"
#include "quant/quantized_linear.h"

#include <cstdint>

namespace hyft::adapters {

struct QuantizedBase {
  int64_t projections = 0;
  double dense_gib = 0, quantized_gib = 0;  // those projections' weights before and after
};

QuantizedBase quantize_base(model::LlamaForCausalLMImpl& model, quant::Format format);

}  // namespace hyft::adapters
