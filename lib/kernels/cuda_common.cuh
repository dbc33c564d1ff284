// What hyft's kernels share: float conversion of the storage types, 16-byte
// vectors of them, the dtype switch, dependent launches, and launch-error checking.
// Device code only.
#pragma once

#include "kernels/cuda_launch.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace hyft::kernels::cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half(v); }

// SwiGLU of one gate and up value, float32: silu(g) u = g sigmoid(g) u (swiglu.cu, and
// the gate/up GEMV that ends in it, quantized_gemv.cu).
__device__ __forceinline__ float sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }
__device__ __forceinline__ float swiglu_value(float g, float u) { return g * sigmoid(g) * u; }

// VEC elements of T loaded or stored as one access (16 bytes when VEC * sizeof(T) == 16).
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Vec {
  T v[VEC];
};
template <typename T, int VEC>
__device__ __forceinline__ Vec<T, VEC> load(const T* p) { return *reinterpret_cast<const Vec<T, VEC>*>(p); }
template <typename T, int VEC>
__device__ __forceinline__ void store(T* p, const Vec<T, VEC>& v) { *reinterpret_cast<Vec<T, VEC>*>(p) = v; }

// Elements per 16-byte access of T.
template <typename T> constexpr int vec16() { return int(16 / sizeof(T)); }

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Calls f(T{}) with T the storage type of `dtype`.
template <typename F>
void dispatch(DType dtype, F&& f) {
  switch (dtype) {
    case DType::F32: f(float{}); break;
    case DType::BF16: f(__nv_bfloat16{}); break;
    case DType::F16: f(__half{}); break;
  }
}

// A launch that failed is an internal error (shapes were checked by the caller).
inline void check_launch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) {
    std::fprintf(stderr, "internal error: CUDA kernel %s failed to launch: %s\n", kernel, cudaGetErrorString(e));
    std::abort();
  }
}

// --- Dependent launches (Hopper's programmatic dependent launch) ---------------------
// A decoding step is hundreds of short kernels; between two of them the GPU idles
// while the second launches and ramps up. A kernel started by launch_dependent may
// be placed on the GPU while the kernel before it in the stream still runs, and
// waits inside, at wait_for_prior_grids(), for that kernel to finish and its writes
// to be visible. So every such kernel calls wait_for_prior_grids() before it reads
// anything the kernel ahead wrote and before it writes anything. allow_dependents(),
// right after the wait (never before it), lets the next kernel be placed in turn; so
// when a kernel starts, every kernel two or more ahead of it has finished, and loads
// of what only those wrote may come before the wait too: frozen weights, the step's
// inputs (copied in before its first kernel), the cache's keys of earlier steps.
// Both are no-ops in a kernel launched the ordinary way. HYFT_DEPENDENT_LAUNCH=0
// launches every kernel the ordinary way.
__device__ __forceinline__ void wait_for_prior_grids() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether launch_dependent asks for early placement: Hopper or later, and not
// switched off by HYFT_DEPENDENT_LAUNCH=0.
inline bool dependent_launch_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("HYFT_DEPENDENT_LAUNCH");
    if (env != nullptr && std::strcmp(env, "0") == 0) return false;
    int device = 0, major = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess)
      return false;
    return major >= 9;
  }();
  return enabled;
}

// kernel<<<grid, block, 0, stream>>>(args...), placed early when enabled (above).
template <typename... Params, typename... Args>
void launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = dependent_launch_enabled() ? 1 : 0;
  (void)cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);  // errors: check_launch after
}

inline unsigned blocks_for(int64_t work, int threads) { return unsigned((work + threads - 1) / threads); }

// The current device's multiprocessors (132 on an H200), read once.
inline int sm_count() {
  static const int n = [] {
    int device = 0, count = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || count <= 0)
      return 132;
    return count;
  }();
  return n;
}

}  // namespace hyft::kernels::cuda
