#include "adapters/lora_linear.h"

#include "common/error.h"
#include "common/strings.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/nn/init.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace hyft::adapters {

void validate(const LoraSettings& s, const std::string& source) {
  HYFT_CHECK(s.r > 0, source, ": LoRA rank r must be positive, got ", s.r);
  HYFT_CHECK(s.alpha > 0, source, ": LoRA alpha must be positive, got ", s.alpha);
  HYFT_CHECK(s.dropout >= 0 && s.dropout < 1, source, ": LoRA dropout must be in [0, 1), got ", s.dropout);
  HYFT_CHECK(!s.targets.empty(), source, ": no LoRA targets");
  const auto known = lora_targets_allowed();
  for (const auto& t : s.targets)
    HYFT_CHECK(std::find(known.begin(), known.end(), t) != known.end(), source, ": '", t,
               "' is not a projection LoRA can wrap (q_proj k_proj v_proj o_proj gate_proj up_proj down_proj "
               "lm_head)");
  const auto& saveable = saveable_modules();
  for (const auto& m : s.modules_to_save) {
    HYFT_CHECK(std::find(saveable.begin(), saveable.end(), m) != saveable.end(), source, ": '", m,
               "' is not a module hyft trains whole (modules_to_save: embed_tokens, lm_head)");
    HYFT_CHECK(std::find(s.targets.begin(), s.targets.end(), m) == s.targets.end(), source, ": '", m,
               "' is both a LoRA target and a module to save; choose one");
  }
}

std::vector<std::string> parse_modules_to_save(const std::string& text, const std::string& source) {
  std::vector<std::string> out;
  for (auto& name : split_list(text))
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  LoraSettings s;
  s.targets = {"q_proj"};
  s.modules_to_save = out;
  validate(s, source);
  return out;
}

std::vector<std::string> parse_targets(const std::string& text, const std::string& source) {
  if (text == "all" || text == "all-linear") return lora_target_names();
  std::vector<std::string> out;
  for (auto& name : split_list(text))
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  LoraSettings s;
  s.targets = out;
  validate(s, source);
  return out;
}

LoraLinear::LoraLinear(std::shared_ptr<model::Projection> base, int64_t r, double scaling_, double dropout_)
    : scaling(scaling_), dropout(dropout_) {
  const int64_t out = base->weight.size(0), in = base->weight.size(1);
  const auto options = base->weight.options().dtype(at::kFloat);
  base_layer = register_module("base_layer", std::move(base));
  lora_A = register_module("lora_A", std::make_shared<model::Projection>(in, r, false, options));
  lora_B = register_module("lora_B", std::make_shared<model::Projection>(r, out, false, options));
  at::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(lora_A->weight, std::sqrt(5.0));  // U(-1/sqrt(in), 1/sqrt(in))
  lora_B->weight.zero_();
}

at::Tensor LoraLinear::forward(const at::Tensor& x) { return forward_over(x, base_layer->forward(x)); }

at::Tensor LoraLinear::forward_over(const at::Tensor& x, const at::Tensor& result) {  // result (..., out)
  const c10::DeviceType device = x.device().type();
  const bool autocast = at::autocast::is_autocast_enabled(device) &&
                        x.scalar_type() == at::autocast::get_autocast_dtype(device);
  // As PEFT: x in A's dtype (float32). Under autocast lora_A's matmul casts it back
  // to x's dtype, and dropout rounds once either way, so x stays as it is: the
  // same numbers without two casts of (..., in).
  at::Tensor h = autocast ? x : x.to(lora_A->weight.scalar_type());
  if (dropout > 0 && is_training()) h = at::dropout(h, dropout, /*train=*/true);
  const at::Tensor a = lora_A->forward(h);  // (..., r)
  if (autocast || result.scalar_type() == a.scalar_type()) {
    // result + scaling * a B^T in one GEMM (the scaling and the sum in its epilogue).
    const int64_t out = result.size(-1);
    const at::Tensor y = at::addmm(result.reshape({-1, out}), a.reshape({-1, a.size(-1)}), lora_B->weight.t(),
                                   /*beta=*/1.0, /*alpha=*/scaling);
    return y.view(result.sizes()).to(result.scalar_type());
  }
  // As PEFT: the sum is taken in the wider dtype, then cast back to base's.
  return (result + lora_B->forward(a) * scaling).to(result.scalar_type());
}

LoraModules apply_lora(model::LlamaForCausalLMImpl& model, const LoraSettings& settings,
                       const std::vector<std::string>& modules) {
  validate(settings, "LoRA settings");
  const std::set<std::string> only(modules.begin(), modules.end());
  for (auto& p : model.parameters()) p.set_requires_grad(false);
  LoraModules wrapped;
  auto wrap = [&](const std::string& name, std::shared_ptr<model::LinearLayer>& slot) {
    auto base = std::dynamic_pointer_cast<model::Projection>(slot);
    HYFT_CHECK(base, name, " is already wrapped by an adapter");
    auto lora = std::make_shared<LoraLinear>(base, settings.r, settings.scaling(), settings.dropout);
    wrapped[name] = lora;
    return lora;
  };
  auto& layers = model.model->layer_list;
  for (size_t i = 0; i < layers.size(); ++i) {
    for (const auto& target : settings.targets) {
      if (target == kLmHead) continue;
      const bool in_attention = is_attention_projection(target);
      const std::string name = projection_module_name(i, target);
      if (!only.empty() && !only.count(name)) continue;
      auto& slot = in_attention ? layers[i]->self_attn->projection(target) : layers[i]->mlp->projection(target);
      auto lora = wrap(name, slot);
      if (in_attention) layers[i]->self_attn->replace_projection(target, lora);
      else layers[i]->mlp->replace_projection(target, lora);
    }
  }
  const bool head = std::find(settings.targets.begin(), settings.targets.end(), kLmHead) != settings.targets.end();
  if (head && (only.empty() || only.count(kLmHead))) {
    HYFT_CHECK(model.lm_head, "lm_head: this model ties lm_head to embed_tokens (tie_word_embeddings), so LoRA "
               "cannot wrap it alone; leave lm_head out of --targets");
    model.replace_lm_head(wrap(kLmHead, model.lm_head));
  }
  for (const auto& name : only)
    HYFT_CHECK(wrapped.count(name), "the adapter wraps '", name, "', which this model does not have");
  // Modules trained whole: float32 and trainable, like the adapter's own weights.
  for (const auto& m : settings.modules_to_save) {
    at::Tensor w = saved_module_weight(model, m);
    at::NoGradGuard no_grad;
    w.set_data(w.to(at::kFloat));
    w.set_requires_grad(true);
  }
  return wrapped;
}

at::Tensor saved_module_weight(model::LlamaForCausalLMImpl& model, const std::string& short_name) {
  HYFT_CHECK(!model.config().tie_word_embeddings, short_name, ": this model ties lm_head to embed_tokens "
             "(tie_word_embeddings), which modules_to_save does not support; leave --modules-to-save out");
  if (short_name == "embed_tokens") return model.model->embed_tokens->weight;
  auto head = std::dynamic_pointer_cast<model::Projection>(model.lm_head);
  TORCH_INTERNAL_ASSERT(head, "lm_head is wrapped; validate() keeps a saved module out of the targets");
  return head->weight;
}

void unfreeze_all(model::LlamaForCausalLMImpl& model) {
  for (auto& p : model.parameters()) p.set_requires_grad(true);
}

ParameterCount count_parameters(model::LlamaForCausalLMImpl& model) {
  ParameterCount c;
  for (const auto& p : model.parameters()) {
    c.total += p.numel();
    if (p.requires_grad()) c.trainable += p.numel();
  }
  return c;
}

std::string format_parameter_count(const ParameterCount& c) {
  auto grouped = [](int64_t v) {
    std::string s = std::to_string(v);
    for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
    return s;
  };
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.4f", c.total ? 100.0 * double(c.trainable) / double(c.total) : 0.0);
  return "trainable params: " + grouped(c.trainable) + " || all params: " + grouped(c.total) +
         " || trainable%: " + pct;
}

}  // namespace hyft::adapters
