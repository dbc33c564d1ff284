// The greedy choice of a decoding step: out[r] = argmax_j x[r, j] for each row of
// logits x (rows, cols), on at::argmax's terms: NaN beats every number, and among
// equals (NaNs too) the first index wins. Reference: at::argmax(x, 1)
// (hyft_kernels_check compares them on ties, NaN and -inf rows).
// One block a row: thread t scans the row's vectors t, t + kThreads, ... (VEC values
// each, in index order), then the warps' butterflies and warp 0 over the warps'
// results. Comparisons in float32 (exact for bf16 and fp16).
#include "kernels/cuda_common.cuh"

#include <cstdint>

namespace hyft::kernels::cuda {

namespace {

constexpr int kThreads = 1024;

// Whether (a, ia) beats (b, ib) (ATen's GreaterOrNan).
__device__ __forceinline__ bool beats(float a, int64_t ia, float b, int64_t ib) {
  if (isnan(a)) return !isnan(b) || ia < ib;
  if (isnan(b)) return false;
  return a == b ? ia < ib : a > b;
}

template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads) argmax_rows_kernel(const T* __restrict__ x, int64_t cols,
                                                               int64_t* __restrict__ out) {
  __shared__ float warp_value[kThreads / 32];
  __shared__ int64_t warp_index[kThreads / 32];
  wait_for_prior_grids();
  allow_dependents();
  const T* row = x + int64_t(blockIdx.x) * cols;
  float best = -INFINITY;
  int64_t at = INT64_MAX;  // nothing yet: the first value ties or beats it
  for (int64_t i = int64_t(threadIdx.x) * VEC; i < cols; i += int64_t(kThreads) * VEC) {
    const Vec<T, VEC> v = load<T, VEC>(row + i);
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const float f = to_float(v.v[k]);
      if (beats(f, i + k, best, at)) best = f, at = i + k;
    }
  }
  auto reduce_warp = [&]() {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) {
      const float b = __shfl_xor_sync(0xffffffffu, best, off);
      const int64_t ib = __shfl_xor_sync(0xffffffffu, at, off);
      if (beats(b, ib, best, at)) best = b, at = ib;
    }
  };
  reduce_warp();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_value[warp] = best, warp_index[warp] = at;
  __syncthreads();
  if (warp != 0) return;
  best = warp_value[lane];
  at = warp_index[lane];
  reduce_warp();
  if (lane == 0) out[blockIdx.x] = at;
}

}  // namespace

bool argmax_rows(const void* x, int64_t rows, int64_t cols, int64_t* out, DType dtype, cudaStream_t stream) {
  if (rows == 0 || cols == 0 || rows > 0x7fffffff) return false;
  dispatch(dtype, [&](auto zero) {
    using T = decltype(zero);
    constexpr int V = vec16<T>();
    const T* xp = static_cast<const T*>(x);
    if (cols % V == 0 && aligned16(xp))
      launch_dependent(argmax_rows_kernel<T, V>, unsigned(rows), kThreads, stream, xp, cols, out);
    else
      launch_dependent(argmax_rows_kernel<T, 1>, unsigned(rows), kThreads, stream, xp, cols, out);
    check_launch("argmax_rows");
  });
  return true;
}

}  // namespace hyft::kernels::cuda
