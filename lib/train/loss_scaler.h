// Dynamic loss scaling for fp16, as torch.amp.GradScaler does it: the
// loss is multiplied by `scale` before backward; gradients are unscaled in place
// and checked; a step whose gradients hold inf or NaN is skipped and the scale
// halves; after `interval` good steps in a row it doubles.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace hyft::train {

struct LossScalerOptions {
  double init_scale = 65536.0;
  double growth = 2.0, backoff = 0.5;
  int64_t interval = 2000;
};

class LossScaler {
 public:
  LossScaler(LossScalerOptions options, const at::Device& device);

  at::Tensor scale_loss(const at::Tensor& loss) const { return loss * scale_; }
  // Unscales `grads` in place; true when all are finite (the step may proceed).
  bool unscale_and_check(const std::vector<at::Tensor>& grads);
  // After the step (or its skip): grow or back off.
  void update();

  double scale() const;
  int64_t skipped_steps() const { return skipped_; }

  // (scale, growth tracker, skipped) for checkpoints.
  std::vector<double> state() const;
  void load_state(const std::vector<double>& state);

 private:
  LossScalerOptions options_;
  at::Tensor scale_, growth_tracker_, found_inf_;
  int64_t skipped_ = 0;
};

}  // namespace hyft::train
