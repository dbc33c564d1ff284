// RMSNorm's arithmetic over one row, by a block of kNormThreads threads, in one order
// of sums: shared by rms_norm.cu's kernel and the decoding GEMVs that normalise their
// input themselves (quantized_gemv.cu's NORM), so that the two write the same bits
// (hyft_kernels_check compares them bit for bit).
//   y[i] = T(h[i] * r * w[i]),  r = 1 / sqrt(mean(h^2) + eps), sums in float32
// Thread t takes the row's vectors t, t + kNormThreads, ... in both passes.
#pragma once

#include "kernels/cuda_common.cuh"

namespace hyft::kernels::cuda {

constexpr int kNormThreads = 256;

// sumsq + the squares of v's values, in order.
template <typename T, int VEC>
__device__ __forceinline__ float add_squares(float sumsq, const Vec<T, VEC>& v) {
#pragma unroll
  for (int k = 0; k < VEC; ++k) sumsq += to_float(v.v[k]) * to_float(v.v[k]);
  return sumsq;
}

// r from every thread's sum of squares: a butterfly within each warp, then the
// warps' sums in warp order. partial: kNormThreads / 32 floats of shared memory.
// Ends past a __syncthreads(), so what the block wrote before is visible after.
__device__ __forceinline__ float rms_scale(float sumsq, float* partial, int64_t dim, float eps) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) sumsq += __shfl_xor_sync(0xffffffffu, sumsq, off);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sumsq;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int k = 0; k < kNormThreads / 32; ++k) total += partial[k];
  return rsqrtf(total / float(dim) + eps);
}

// T(h * r * w) for each value of a vector of the row.
template <typename T, int VEC>
__device__ __forceinline__ Vec<T, VEC> rms_scaled(const Vec<T, VEC>& h, const Vec<T, VEC>& w, float r) {
  Vec<T, VEC> o;
#pragma unroll
  for (int k = 0; k < VEC; ++k) o.v[k] = from_float<T>(to_float(h.v[k]) * r * to_float(w.v[k]));
  return o;
}

}  // namespace hyft::kernels::cuda
