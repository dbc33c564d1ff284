// AdamW over the trainable parameters, through ATen's fused kernel
// (_fused_adamw_, on CPU and CUDA): decoupled weight decay, bias correction,
// per-group decay. State (exp_avg, exp_avg_sq, step) is saved and restored with
// checkpoints. Matches torch.optim.AdamW.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace hyft::train {

struct AdamWOptions {
  double lr = 2e-4;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
};

struct NamedParameter {
  std::string name;
  at::Tensor param;  // float32, requires grad
  bool decay = true;  // matrices decay; biases and norm weights do not
};

class AdamW {
 public:
  AdamW(std::vector<NamedParameter> params, AdamWOptions options);

  // One step at learning rate `lr` for every parameter that has a gradient.
  void step(double lr);
  void zero_grad();

  const std::vector<NamedParameter>& parameters() const { return params_; }
  const AdamWOptions& options() const { return options_; }

  // name.exp_avg / name.exp_avg_sq / name.step tensors, for checkpoints.
  std::vector<std::pair<std::string, at::Tensor>> state() const;
  // Restores state() output; a missing or misshapen entry is a UserError.
  void load_state(const std::map<std::string, at::Tensor>& state, const std::string& source);

 private:
  std::vector<NamedParameter> params_;
  AdamWOptions options_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_, steps_;
};

// Decay group by name: 1-D tensors (biases, norms) do not decay.
bool default_decay(const at::Tensor& param);

}  // namespace hyft::train
