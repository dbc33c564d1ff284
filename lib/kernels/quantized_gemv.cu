// y (m, rows) = x (m, cols) W^T with W kept quantized (quant/formats.h), for the few
// rows of a decoding step (m <= kGemvMaxRows): the weight's codes are read once,
// straight from memory, which is what bounds decoding. Reference: dequantize W to
// T, then at::linear (kernels_check compares them).
//
// One warp per output row. A lane takes 16 bytes of codes at a time (32 weights of
// a 4-bit format, 16 of INT8), dequantizes them as dequantize.cu does (rounded to
// T, as the reference's dense weight is), and multiplies them with the same columns
// of every x row; UNROLL such loads are in flight per lane. Sums in float32, then
// a butterfly reduction over the warp; lane 0 writes the m outputs.
#include "kernels/cuda_common.cuh"
#include "kernels/quantized_common.cuh"

namespace hyft::kernels::cuda {

namespace {

constexpr int kWarps = 4;  // rows per thread block
constexpr int kUnroll = 4;

template <QFormat F> constexpr int weights_per_load() { return F == QFormat::Int8 ? 16 : 32; }

// The 16-byte word's weights, dequantized and rounded to T, as float.
template <typename T, QFormat F>
__device__ __forceinline__ void decode_word(const uint4& word, int64_t row, int64_t k, int64_t cols, int64_t block,
                                            const float* levels, const QuantizedView& w, float* out) {
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&word);
  if constexpr (F == QFormat::Int8) {
    const float a = static_cast<const float*>(w.scale)[row];
#pragma unroll
    for (int j = 0; j < 16; ++j) out[j] = to_float(from_float<T>(decode_int8(int8_t(bytes[j]), a)));
  } else {
    const int64_t b = (row * cols + k) / block;  // the 32 weights share one block
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      out[2 * j] = to_float(from_float<T>(decode_4bit<F>(bytes[j] >> 4, b, levels, w.scale, w.minimum)));
      out[2 * j + 1] = to_float(from_float<T>(decode_4bit<F>(bytes[j] & 15, b, levels, w.scale, w.minimum)));
    }
  }
}

template <typename T, QFormat F, int M>
__global__ void __launch_bounds__(kWarps * 32)
    quantized_gemv_kernel(QuantizedView w, const T* __restrict__ x, T* __restrict__ y, int m) {
  constexpr int K = weights_per_load<F>();
  constexpr int BYTES_PER_WEIGHT_X2 = (F == QFormat::Int8) ? 2 : 1;  // bytes of codes per 2 weights
  __shared__ float levels[16];
  if (threadIdx.x < 16) levels[threadIdx.x] = kNf4Levels[threadIdx.x];
  __syncthreads();
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= w.rows) return;
  const int64_t cols = w.cols;
  const uint8_t* codes = static_cast<const uint8_t*>(w.codes) + row * cols * BYTES_PER_WEIGHT_X2 / 2;
  float acc[M];
#pragma unroll
  for (int r = 0; r < M; ++r) acc[r] = 0.0f;
  for (int64_t k0 = int64_t(lane) * K; k0 < cols; k0 += int64_t(kUnroll) * 32 * K) {
    uint4 words[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {  // every load first, then the arithmetic
      const int64_t k = k0 + int64_t(u) * 32 * K;
      if (k < cols) words[u] = __ldg(reinterpret_cast<const uint4*>(codes + k * BYTES_PER_WEIGHT_X2 / 2));
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t k = k0 + int64_t(u) * 32 * K;
      if (k >= cols) break;
      float wv[K];
      decode_word<T, F>(words[u], row, k, cols, w.block, levels, w, wv);
#pragma unroll
      for (int r = 0; r < M; ++r) {
        if (r >= m) break;
        const T* xr = x + int64_t(r) * cols + k;
#pragma unroll
        for (int j = 0; j < K; j += vec16<T>()) {
          const Vec<T, vec16<T>()> xv = load<T, vec16<T>()>(xr + j);
#pragma unroll
          for (int e = 0; e < vec16<T>(); ++e) acc[r] += wv[j + e] * to_float(xv.v[e]);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < M; ++r) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], off);
  }
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < M; ++r)
      if (r < m) y[int64_t(r) * w.rows + row] = from_float<T>(acc[r]);
  }
}

template <typename T, QFormat F>
void launch(const QuantizedView& w, const T* x, T* y, int m, cudaStream_t stream) {
  const unsigned grid = blocks_for(w.rows, kWarps);
  if (m == 1) quantized_gemv_kernel<T, F, 1><<<grid, kWarps * 32, 0, stream>>>(w, x, y, m);
  else if (m == 2) quantized_gemv_kernel<T, F, 2><<<grid, kWarps * 32, 0, stream>>>(w, x, y, m);
  else if (m <= 4) quantized_gemv_kernel<T, F, 4><<<grid, kWarps * 32, 0, stream>>>(w, x, y, m);
  else quantized_gemv_kernel<T, F, 8><<<grid, kWarps * 32, 0, stream>>>(w, x, y, m);
}

}  // namespace

bool quantized_gemv(const QuantizedView& w, const void* x_ptr, void* y_ptr, int64_t m, DType dtype,
                    cudaStream_t stream) {
  const int k = w.format == QFormat::Int8 ? 16 : 32;
  if (m < 1 || m > kGemvMaxRows || w.rows == 0 || w.cols % k != 0 || !aligned16(w.codes) || !aligned16(x_ptr))
    return false;
  if (w.format != QFormat::Int8 && w.block % 32 != 0) return false;
  dispatch(dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* x = static_cast<const T*>(x_ptr);
    T* y = static_cast<T*>(y_ptr);
    switch (w.format) {
      case QFormat::Nf4: launch<T, QFormat::Nf4>(w, x, y, int(m), stream); break;
      case QFormat::Int8: launch<T, QFormat::Int8>(w, x, y, int(m), stream); break;
      case QFormat::Int4: launch<T, QFormat::Int4>(w, x, y, int(m), stream); break;
    }
    check_launch("quantized_gemv");
  });
  return true;
}

}  // namespace hyft::kernels::cuda
