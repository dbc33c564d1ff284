// Peak GPU memory of the caching allocator, for progress lines and benchmarks.
// On a CPU device both functions do nothing and report 0.
#pragma once

#include <c10/core/Device.h>

namespace hyft {

double peak_memory_gib(const c10::Device& device);
void reset_peak_memory(const c10::Device& device);

}  // namespace hyft
