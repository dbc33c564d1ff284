// Peak memory for progress lines, metrics and benchmarks, and waiting for the
// device (timings; nothing to wait for on the CPU).
#pragma once

#include <c10/core/Device.h>

#include <utility>

namespace hyft {

// On a GPU the caching allocator's peak since the last reset; on the CPU the
// process's peak resident memory (which cannot be reset).
double peak_memory_gib(const c10::Device& device);
void reset_peak_memory(const c10::Device& device);
// Bytes of the GPU in use (by every process) and in all; {-1, -1} on the CPU.
std::pair<double, double> device_memory_bytes(const c10::Device& device);
// Waits until the device has finished the work queued so far.
void synchronize(const c10::Device& device);

}  // namespace hyft
