// A decoding step's keys and values into the serving engine's slotted cache, both
// in one launch. Reference: cache.index_put_({rows, positions}, src) for k and v.
//   k_cache[b, positions[b], :] = k[b, :],  v_cache[b, positions[b], :] = v[b, :]
// k, v (B, E), rows k_stride / v_stride apart (v read in place from the fused q/k/v
// output), the caches (S, Tmax, E) contiguous, E = Hkv * Dh; one thread block a row,
// VEC elements a thread.
#include "kernels/cuda_common.cuh"

namespace hyft::kernels::cuda {

namespace {

constexpr int kThreads = 128;

template <typename T, int VEC>
__global__ void slot_cache_write_kernel(const T* __restrict__ k, const T* __restrict__ v,
                                        const int64_t* __restrict__ positions, T* __restrict__ k_cache,
                                        T* __restrict__ v_cache, int64_t max_len, int64_t width, int64_t k_stride,
                                        int64_t v_stride) {
  const int64_t b = blockIdx.x;
  const int64_t dst = (b * max_len + positions[b]) * width;
  for (int64_t i = int64_t(threadIdx.x) * VEC; i < width; i += int64_t(kThreads) * VEC) {
    store<T, VEC>(k_cache + dst + i, load<T, VEC>(k + b * k_stride + i));
    store<T, VEC>(v_cache + dst + i, load<T, VEC>(v + b * v_stride + i));
  }
}

}  // namespace

void slot_cache_write(const void* k, const void* v, const int64_t* positions, void* k_cache, void* v_cache,
                      int64_t rows, int64_t max_len, int64_t width, int64_t k_stride, int64_t v_stride, DType dtype,
                      cudaStream_t stream) {
  if (rows == 0) return;
  dispatch(dtype, [&](auto zero) {
    using T = decltype(zero);
    constexpr int V = vec16<T>();
    const auto *kp = static_cast<const T*>(k), *vp = static_cast<const T*>(v);
    auto *kc = static_cast<T*>(k_cache), *vc = static_cast<T*>(v_cache);
    if (width % V == 0 && k_stride % V == 0 && v_stride % V == 0 && aligned16(kp) && aligned16(vp) &&
        aligned16(kc) && aligned16(vc))
      slot_cache_write_kernel<T, V><<<unsigned(rows), kThreads, 0, stream>>>(kp, vp, positions, kc, vc, max_len, width,
                                                                            k_stride, v_stride);
    else
      slot_cache_write_kernel<T, 1><<<unsigned(rows), kThreads, 0, stream>>>(kp, vp, positions, kc, vc, max_len, width,
                                                                            k_stride, v_stride);
    check_launch("slot_cache_write");
  });
}

}  // namespace hyft::kernels::cuda
