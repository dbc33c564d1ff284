#include "adapters/multi_lora.h"

#include "common/error.h"

#include <ATen/ATen.h>

#include <map>

namespace hyft::adapters {

MultiLoraLinear::MultiLoraLinear(std::shared_ptr<model::LinearLayer> base, std::shared_ptr<model::RowAdapters> router)
    : base_layer(register_module("base_layer", std::move(base))), router(std::move(router)) {}

void MultiLoraLinear::add(int64_t id, const at::Tensor& A, const at::Tensor& B, double scaling) {
  auto p = base_layer->parameters();
  const auto options = p.empty() ? A.options() : p.front().options().requires_grad(false);
  entries_.push_back({id, A.to(options), B.to(options), scaling});
}

at::Tensor MultiLoraLinear::forward(const at::Tensor& x) { return add_deltas(x, base_layer->forward(x)); }

at::Tensor MultiLoraLinear::forward_over(const at::Tensor& x, const at::Tensor& y) {
  return add_deltas(x, base_layer->forward_over(x, y));
}

at::Tensor MultiLoraLinear::add_deltas(const at::Tensor& x, at::Tensor y) const {
  if (!router || !router->rows.defined() || entries_.empty()) return y;
  const at::Tensor& rows = router->rows;  // (B,)
  for (const auto& e : entries_) {
    const at::Tensor use = (rows == e.id).to(y.scalar_type()).view({-1, 1, 1}) * e.scaling;  // (B, 1, 1)
    y = y + at::matmul(at::matmul(x, e.A.t()), e.B.t()) * use;
  }
  return y;
}

namespace {

// Where a module of an adapter sits: a layer's projection, or lm_head (layer -1).
struct Place {
  int64_t layer = -1;
  bool attention = false;
  std::string projection;
};

Place place_of(const std::string& name, const std::string& source, size_t layers) {
  Place p;
  if (name == "lm_head") return p;
  const std::string prefix = "model.layers.";
  const size_t dot = name.find('.', prefix.size()), dot2 = dot == std::string::npos ? dot : name.find('.', dot + 1);
  const bool ok = name.rfind(prefix, 0) == 0 && dot2 != std::string::npos &&
                  name.find_first_not_of("0123456789", prefix.size()) == dot && dot > prefix.size();
  HYFT_CHECK(ok, source, ": the adapter wraps '", name, "', which this model does not have");
  p.layer = std::stoll(name.substr(prefix.size(), dot - prefix.size()));
  p.attention = name.compare(dot + 1, dot2 - dot - 1, "self_attn") == 0;
  p.projection = name.substr(dot2 + 1);
  HYFT_CHECK(size_t(p.layer) < layers, source, ": the adapter wraps '", name, "', but the model has ", layers,
             " layers");
  return p;
}

std::shared_ptr<model::LinearLayer>& slot(model::LlamaForCausalLMImpl& m, const Place& p) {
  if (p.layer < 0) return m.lm_head;
  auto& layer = m.model->layer_list[size_t(p.layer)];
  return p.attention ? layer->self_attn->projection(p.projection) : layer->mlp->projection(p.projection);
}

void replace(model::LlamaForCausalLMImpl& m, const Place& p, std::shared_ptr<model::LinearLayer> with) {
  if (p.layer < 0) return m.replace_lm_head(std::move(with));
  auto& layer = m.model->layer_list[size_t(p.layer)];
  if (p.attention) layer->self_attn->replace_projection(p.projection, std::move(with));
  else layer->mlp->replace_projection(p.projection, std::move(with));
}

}  // namespace

std::shared_ptr<model::RowAdapters> attach_adapters(model::LlamaForCausalLMImpl& model,
                                                    const std::vector<LoraAdapter>& adapters,
                                                    const std::vector<std::string>& sources) {
  auto router = std::make_shared<model::RowAdapters>();
  std::map<std::string, std::shared_ptr<MultiLoraLinear>> wrapped;
  for (size_t k = 0; k < adapters.size(); ++k) {
    const LoraAdapter& a = adapters[k];
    const std::string& source = sources[k];
    HYFT_CHECK(a.saved_modules.empty() && a.base_weights.empty() && a.settings.modules_to_save.empty(), source,
               ": this adapter trains whole modules (modules_to_save, or a grown vocabulary), which change the base "
               "it would share; serve it alone with --adapter");
    for (const auto& [name, ab] : a.weights) {
      auto& multi = wrapped[name];
      if (!multi) {
        const Place p = place_of(name, source, model.model->layer_list.size());
        HYFT_CHECK(p.layer >= 0 || model.lm_head, source, ": the adapter wraps lm_head, which this model ties to "
                   "embed_tokens");
        multi = std::make_shared<MultiLoraLinear>(slot(model, p), router);
        replace(model, p, multi);
      }
      const auto& [A, B] = ab;
      const auto w = multi->base_layer->parameters().front();  // (out, in)
      HYFT_CHECK(A.dim() == 2 && B.dim() == 2 && A.size(1) == w.size(1) && B.size(0) == w.size(0) &&
                     A.size(0) == B.size(1),
                 source, ": the adapter's ", name, " has A ", A.sizes(), " and B ", B.sizes(),
                 ", which do not fit the base's ", w.sizes(), "; it belongs to another base model");
      multi->add(int64_t(k), A, B, a.settings.scaling());
    }
  }
  return router;
}

}  // namespace hyft::adapters
