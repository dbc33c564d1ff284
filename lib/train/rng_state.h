// The default random generator of a device (CPU, or one CUDA device), read and
// set under its lock: what checkpoints save and activation recompute replays.
#pragma once

#include <ATen/core/Tensor.h>

namespace hyft::train {

at::Tensor get_rng_state(const at::Device& device);
void set_rng_state(const at::Device& device, const at::Tensor& state);

}  // namespace hyft::train
