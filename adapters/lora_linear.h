// LoRA on a projection: y = base(x) + scaling * B A dropout(x), with
// A (r, in) Kaiming-uniform and B (out, r) zero, so a fresh adapter changes nothing.
// LoraLinear takes the projection's slot in the model and keeps the projection as
// its `base_layer`, so parameter names are PEFT's: q_proj.base_layer.weight,
// q_proj.lora_A.weight, q_proj.lora_B.weight.
#pragma once

#include "adapters/lora_settings.h"
#include "model/llama.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace hyft::adapters {

class LoraLinear : public model::LinearLayer {
 public:
  // Wraps `base` (a Projection); A and B are fp32 on base's device.
  LoraLinear(std::shared_ptr<model::Projection> base, int64_t r, double scaling, double dropout);
  at::Tensor forward(const at::Tensor& x) override;  // (..., in) -> (..., out) in base's dtype
  model::Projection* base_projection() override { return base_layer.get(); }
  at::Tensor forward_over(const at::Tensor& x, const at::Tensor& y) override;  // y + the LoRA term

  std::shared_ptr<model::Projection> base_layer, lora_A, lora_B;
  double scaling, dropout;
};

// The wrapped projections of a model by module name
// ("model.layers.0.self_attn.q_proj" -> its LoraLinear).
using LoraModules = std::map<std::string, std::shared_ptr<LoraLinear>>;

// Wraps settings.targets in every layer (or only `modules`, names as above, when
// given), freezes every base weight and leaves only A and B trainable, and the
// modules to save (float32, trained whole).
LoraModules apply_lora(model::LlamaForCausalLMImpl& model, const LoraSettings& settings,
                       const std::vector<std::string>& modules = {});

// The whole weight of a module the adapter trains (settings.modules_to_save):
// "embed_tokens" -> model.embed_tokens.weight (V, D), "lm_head" -> lm_head.weight (V, D).
at::Tensor saved_module_weight(model::LlamaForCausalLMImpl& model, const std::string& short_name);

// Every parameter trainable, no adapters (--full).
void unfreeze_all(model::LlamaForCausalLMImpl& model);

struct ParameterCount {
  int64_t trainable = 0, total = 0;
};
ParameterCount count_parameters(model::LlamaForCausalLMImpl& model);
// "trainable params: 1,024 || all params: 27,808 || trainable%: 3.6824", as PEFT prints it.
std::string format_parameter_count(const ParameterCount& c);

}  // namespace hyft::adapters
