#include "train/adamw.h"

#include "common/error.h"

#include <c10/util/Exception.h>

#include <ATen/ATen.h>

namespace hyft::train {

bool default_decay(const at::Tensor& param) { return param.dim() >= 2; }

AdamW::AdamW(std::vector<NamedParameter> params, AdamWOptions options)
    : params_(std::move(params)), options_(options) {
  for (const auto& p : params_) {
    TORCH_INTERNAL_ASSERT(p.param.scalar_type() == at::kFloat, "AdamW keeps float32 master weights: ", p.name);
    exp_avg_.push_back(at::zeros_like(p.param));
    exp_avg_sq_.push_back(at::zeros_like(p.param));
    steps_.push_back(at::zeros({}, p.param.options()));
  }
}

void AdamW::step(double lr) {
  at::NoGradGuard no_grad;
  // Two groups (decay, no decay), each one fused call.
  for (bool decay : {true, false}) {
    std::vector<at::Tensor> p, g, m, v, s;
    for (size_t i = 0; i < params_.size(); ++i) {
      if (params_[i].decay != decay || !params_[i].param.grad().defined()) continue;
      p.push_back(params_[i].param);
      g.push_back(params_[i].param.grad());
      m.push_back(exp_avg_[i]);
      v.push_back(exp_avg_sq_[i]);
      s.push_back(steps_[i]);
    }
    if (p.empty()) continue;
    at::_foreach_add_(s, 1.0);  // the kernel reads the incremented step, as torch.optim does
    at::_fused_adamw_(p, g, m, v, /*max_exp_avg_sqs=*/{}, s, lr, options_.beta1, options_.beta2,
                      decay ? options_.weight_decay : 0.0, options_.eps, /*amsgrad=*/false, /*maximize=*/false,
                      /*grad_scale=*/std::nullopt, /*found_inf=*/std::nullopt);
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_) p.param.mutable_grad() = at::Tensor();
}

std::vector<std::pair<std::string, at::Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back(params_[i].name + ".exp_avg", exp_avg_[i]);
    out.emplace_back(params_[i].name + ".exp_avg_sq", exp_avg_sq_[i]);
    out.emplace_back(params_[i].name + ".step", steps_[i]);
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) {
  at::NoGradGuard no_grad;
  auto take = [&](const std::string& key, at::Tensor& into) {
    const auto it = state.find(key);
    HYFT_CHECK(it != state.end(), source, ": optimizer state has no '", key, "'; the checkpoint is for another run");
    HYFT_CHECK(it->second.sizes() == into.sizes(), source, ": optimizer state '", key, "' has shape ",
               it->second.sizes(), ", expected ", into.sizes());
    into.copy_(it->second);
  };
  for (size_t i = 0; i < params_.size(); ++i) {
    take(params_[i].name + ".exp_avg", exp_avg_[i]);
    take(params_[i].name + ".exp_avg_sq", exp_avg_sq_[i]);
    take(params_[i].name + ".step", steps_[i]);
  }
}

}  // namespace hyft::train
