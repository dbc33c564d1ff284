// Cross-entropy of rows of logits, the loss and its gradient in one kernel, the
// gradient written over the logits (Liger's cross_entropy, llm.c's
// classifier_fused). Reference: at::cross_entropy_loss on the rows upcast to
// float32, and its gradient softmax(row) - onehot(label).
//   pass 1: max m and sum s of exp(x - m) over the row (online, per thread, then
//           merged across the block);       lse = m + log(s)
//   pass 2: row[j] = exp(x_j - lse) - [j == label];  loss = lse - x_label
// One block per row; VEC elements per access when the row allows 16-byte ones.
#include "kernels/cuda_common.cuh"

#include <cfloat>

namespace hyft::kernels::cuda {

namespace {

constexpr int kThreads = 512;

// (m, s) pairs merged: the sum of exponentials re-based on the larger maximum.
__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
  const float mm = fmaxf(m, m2);
  if (mm == -FLT_MAX) return;  // both empty
  s = s * __expf(m - mm) + s2 * __expf(m2 - mm);
  m = mm;
}

template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads) cross_entropy_rows_kernel(T* __restrict__ logits,
                                                                      const int64_t* __restrict__ labels,
                                                                      float* __restrict__ loss, int64_t vocab) {
  T* row = logits + int64_t(blockIdx.x) * vocab;
  const int64_t label = labels[blockIdx.x];
  const float x_label = to_float(row[label]);

  // pass 1
  float m = -FLT_MAX, s = 0.0f;
  for (int64_t j = int64_t(threadIdx.x) * VEC; j < vocab; j += int64_t(kThreads) * VEC) {
    const Vec<T, VEC> x = load<T, VEC>(row + j);
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const float v = to_float(x.v[k]);
      if (v > m) {
        s = s * __expf(m - v) + 1.0f;
        m = v;
      } else {
        s += __expf(v - m);
      }
    }
  }
  for (int offset = 16; offset > 0; offset /= 2)
    merge(m, s, __shfl_xor_sync(0xffffffffu, m, offset), __shfl_xor_sync(0xffffffffu, s, offset));
  __shared__ float warp_m[kThreads / 32], warp_s[kThreads / 32];
  __shared__ float row_lse;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    warp_m[warp] = m;
    warp_s[warp] = s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float bm = warp_m[0], bs = warp_s[0];
    for (int w = 1; w < kThreads / 32; ++w) merge(bm, bs, warp_m[w], warp_s[w]);
    row_lse = bm + logf(bs);
    loss[blockIdx.x] = row_lse - x_label;
  }
  __syncthreads();
  const float lse = row_lse;

  // pass 2
  for (int64_t j = int64_t(threadIdx.x) * VEC; j < vocab; j += int64_t(kThreads) * VEC) {
    Vec<T, VEC> x = load<T, VEC>(row + j);
#pragma unroll
    for (int k = 0; k < VEC; ++k)
      x.v[k] = from_float<T>(expf(to_float(x.v[k]) - lse) - (j + k == label ? 1.0f : 0.0f));
    store<T, VEC>(row + j, x);
  }
}

}  // namespace

void cross_entropy_rows_inplace(void* logits, const int64_t* labels, float* loss, int64_t n, int64_t vocab,
                                DType dtype, cudaStream_t stream) {
  if (n == 0) return;
  dispatch(dtype, [&](auto zero) {
    using T = decltype(zero);
    constexpr int V = vec16<T>();
    T* x = static_cast<T*>(logits);
    if (vocab % V == 0 && aligned16(x))
      cross_entropy_rows_kernel<T, V><<<unsigned(n), kThreads, 0, stream>>>(x, labels, loss, vocab);
    else
      cross_entropy_rows_kernel<T, 1><<<unsigned(n), kThreads, 0, stream>>>(x, labels, loss, vocab);
    check_launch("cross_entropy_rows");
  });
}

}  // namespace hyft::kernels::cuda
