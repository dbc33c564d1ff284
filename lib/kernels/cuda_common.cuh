// What hyft's kernels share: float conversion of the storage types, 16-byte
// vectors of them, the dtype switch, and launch-error checking. Device code only.
#pragma once

#include "kernels/cuda_launch.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

namespace hyft::kernels::cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half(v); }

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

inline unsigned blocks_for(int64_t work, int threads) { return unsigned((work + threads - 1) / threads); }

}  // namespace hyft::kernels::cuda
