// Peak GPU memory of the caching allocator, for progress lines and benchmarks,
// and waiting for the device (timings). On a CPU device these do nothing and
// report 0.
#pragma once

#include <c10/core/Device.h>

namespace hyft {

double peak_memory_gib(const c10::Device& device);
void reset_peak_memory(const c10::Device& device);
// Waits until the device has finished the work queued so far.
void synchronize(const c10::Device& device);

}  // namespace hyft
