#include "adapters/quantize_base.h"

#include "adapters/lora_linear.h"
#include "adapters/multi_lora.h"

namespace hyft::adapters {

namespace {

// The base projection in a slot: itself, or what an adapter wraps.
std::shared_ptr<model::Projection> base_of(const std::shared_ptr<model::LinearLayer>& slot) {
  if (auto p = std::dynamic_pointer_cast<model::Projection>(slot)) return p;
  if (auto l = std::dynamic_pointer_cast<LoraLinear>(slot)) return l->base_layer;
  if (auto m = std::dynamic_pointer_cast<MultiLoraLinear>(slot))
    return std::dynamic_pointer_cast<model::Projection>(m->base_layer);
  return nullptr;
}

}  // namespace

QuantizedBase quantize_base(model::LlamaForCausalLMImpl& model, quant::Format format) {
  QuantizedBase out;
  if (format == quant::Format::None) return out;
  for (auto& layer : model.model->layer_list) {
    std::vector<std::shared_ptr<model::LinearLayer>> slots;
    for (const char* name : {"q_proj", "k_proj", "v_proj", "o_proj"}) slots.push_back(layer->self_attn->projection(name));
    for (const char* name : {"gate_proj", "up_proj", "down_proj"}) slots.push_back(layer->mlp->projection(name));
    for (const auto& slot : slots) {
      const auto p = base_of(slot);
      TORCH_INTERNAL_ASSERT(p, "quantize_base: a projection slot holds neither a projection nor an adapter");
      if (p->quantized) continue;
      out.dense_gib += double(p->weight.numel() * int64_t(p->weight.element_size())) / double(1 << 30);
      p->quantize(format);
      out.quantized_gib += double(p->quantized->bytes()) / double(1 << 30);
      ++out.projections;
    }
  }
  return out;
}

}  // namespace hyft::adapters
