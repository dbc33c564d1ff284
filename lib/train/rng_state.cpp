#include "train/rng_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <mutex>

namespace hyft::train {

namespace {
at::Generator generator(const at::Device& device) {
  return device.is_cuda() ? at::globalContext().defaultGenerator(device) : at::detail::getDefaultCPUGenerator();
}
}  // namespace

at::Tensor get_rng_state(const at::Device& device) {
  at::Generator g = generator(device);
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void set_rng_state(const at::Device& device, const at::Tensor& state) {
  at::Generator g = generator(device);
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
}

}  // namespace hyft::train
