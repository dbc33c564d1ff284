// One row of RMSNorm, optionally after the residual add, by one thread block of
// THREADS threads: the arithmetic of rms_norm.cu's kernel, shared with the GEMV that
// ends in it (quantized_gemv.cu, AddRmsNorm), so that both round and sum alike.
//   h      = T(x + d)                          (when d is given; written out)
//   y[i]   = T(h[i] * r * w[i]),  r = 1 / sqrt(mean(h^2) + eps), sums in float32
// d is read through L2 (load_cg): the GEMV's other blocks wrote it in the same grid.
// Device code only.
#pragma once

#include "kernels/cuda_common.cuh"

namespace hyft::kernels::cuda {

template <typename T, int VEC, int THREADS>
__device__ __forceinline__ void add_rms_norm_row(const T* __restrict__ x, const T* d, const T* __restrict__ w,
                                                 T* h, T* __restrict__ y, int64_t dim, float eps) {
  __shared__ float partial[THREADS / 32];
  float sumsq = 0.0f;
  for (int64_t i = int64_t(threadIdx.x) * VEC; i < dim; i += int64_t(THREADS) * VEC) {
    Vec<T, VEC> v = load<T, VEC>(x + i);
    if (d) {
      const Vec<T, VEC> dv = load_cg<T, VEC>(d + i);
#pragma unroll
      for (int k = 0; k < VEC; ++k) v.v[k] = from_float<T>(to_float(v.v[k]) + to_float(dv.v[k]));
      store<T, VEC>(h + i, v);
    }
#pragma unroll
    for (int k = 0; k < VEC; ++k) sumsq += to_float(v.v[k]) * to_float(v.v[k]);
  }
#pragma unroll
  for (int off = 16; off > 0; off /= 2) sumsq += __shfl_xor_sync(0xffffffffu, sumsq, off);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sumsq;
  __syncthreads();  // also makes this block's h visible to the second pass
  float total = 0.0f;
#pragma unroll
  for (int k = 0; k < THREADS / 32; ++k) total += partial[k];
  const float r = rsqrtf(total / float(dim) + eps);
  const T* src = d ? h : x;
  for (int64_t i = int64_t(threadIdx.x) * VEC; i < dim; i += int64_t(THREADS) * VEC) {
    const Vec<T, VEC> v = load<T, VEC>(src + i), wv = load<T, VEC>(w + i);
    Vec<T, VEC> o;
#pragma unroll
    for (int k = 0; k < VEC; ++k) o.v[k] = from_float<T>(to_float(v.v[k]) * r * to_float(wv.v[k]));
    store<T, VEC>(y + i, o);
  }
}

}  // namespace hyft::kernels::cuda
