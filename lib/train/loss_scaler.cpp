#include "train/loss_scaler.h"

#include <ATen/ATen.h>

namespace hyft::train {

LossScaler::LossScaler(LossScalerOptions options, const at::Device& device) : options_(options) {
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  scale_ = at::full({1}, options.init_scale, f32);
  growth_tracker_ = at::zeros({1}, f32.dtype(at::kInt));
  found_inf_ = at::zeros({1}, f32);
}

bool LossScaler::unscale_and_check(const std::vector<at::Tensor>& grads) {
  at::NoGradGuard no_grad;
  found_inf_.zero_();
  const at::Tensor inv = scale_.reciprocal();
  std::vector<at::Tensor> defined;
  for (const auto& g : grads)
    if (g.defined()) defined.push_back(g);
  if (!defined.empty()) at::_amp_foreach_non_finite_check_and_unscale_(defined, found_inf_, inv);
  const bool finite = found_inf_.item<float>() == 0.0f;
  if (!finite) ++skipped_;
  return finite;
}

void LossScaler::update() {
  at::_amp_update_scale_(scale_, growth_tracker_, found_inf_, options_.growth, options_.backoff, options_.interval);
}

double LossScaler::scale() const { return scale_.item<double>(); }

std::vector<double> LossScaler::state() const {
  return {scale(), double(growth_tracker_.item<int>()), double(skipped_)};
}

void LossScaler::load_state(const std::vector<double>& s) {
  scale_.fill_(s.at(0));
  growth_tracker_.fill_(int(s.at(1)));
  skipped_ = int64_t(s.at(2));
}

}  // namespace hyft::train
