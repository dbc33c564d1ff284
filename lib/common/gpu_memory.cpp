#include "common/gpu_memory.h"

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>

#include <sys/resource.h>

namespace hyft {

double peak_memory_gib(const c10::Device& device) {
  if (!device.is_cuda()) {
    struct rusage usage {};
    ::getrusage(RUSAGE_SELF, &usage);
    return double(usage.ru_maxrss) / double(1 << 20);  // KiB on Linux
  }
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
  return double(stats.allocated_bytes[size_t(c10::CachingAllocator::StatType::AGGREGATE)].peak) / double(1ull << 30);
}

void reset_peak_memory(const c10::Device& device) {
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
}

std::pair<double, double> device_memory_bytes(const c10::Device& device) {
  if (!device.is_cuda()) return {-1.0, -1.0};
  c10::cuda::CUDAGuard guard(device);
  size_t free = 0, total = 0;
  C10_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return {double(total - free), double(total)};
}

void synchronize(const c10::Device& device) {
  if (device.is_cuda()) c10::cuda::device_synchronize();
}

}  // namespace hyft
