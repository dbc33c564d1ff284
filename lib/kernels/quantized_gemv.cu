// y (m, rows) = x (m, cols) W^T with W kept quantized (quant/formats.h), for the few
// rows of a decoding step (m <= kGemvMaxRows): the weight's codes are read once,
// straight from memory, which is what bounds decoding. Reference: dequantize W to
// T, then at::linear (kernels_check compares them).
//
// One warp per output row. A lane takes 16 bytes of codes at a time (32 weights of
// a 4-bit format, 16 of INT8) and multiplies their values with the same columns of
// every x row, UNROLL such loads in flight per lane. The scales are applied per
// word, not per weight (the 32 weights of a word share their block's scale; INT8's
// is the row's, applied once at the end):
//   NF4   sum_j levels[c_j] x_j * absmax   (absmax decoded first when double-quantized)
//   INT4  (sum_j c_j x_j) * s + (sum_j x_j) * m
//   INT8  (sum_j q_j x_j) * absmax / 127
// so W is never rounded to T (the reference rounds it; the check's bounds allow it).
// Codes become floats through a 16-entry shared table (NF4's levels, or 0..15; a
// lane per bank, no conflicts) or, for INT8, by the exponent trick. Sums in float32,
// then a butterfly reduction over the warp; lane 0 writes the m outputs.
#include "kernels/cuda_common.cuh"
#include "kernels/quantized_common.cuh"

namespace hyft::kernels::cuda {

namespace {

constexpr int kWarps = 8;  // rows per thread block
constexpr int kUnroll = 4;
constexpr int kBlockShift = 6;  // the 4-bit formats' scale blocks: 64 weights, whole within a row

template <QFormat F> constexpr int weights_per_load() { return F == QFormat::Int8 ? 16 : 32; }

// The signed byte k of `word` (already XORed with 0x80808080) as a float: the byte
// becomes the low mantissa bits of 2^23, then 2^23 + 128 is subtracted.
__device__ __forceinline__ float int8_byte(uint32_t biased, int k) {
  return __int_as_float(int(__byte_perm(biased, 0x4B000000u, 0x7440u | unsigned(k)))) - 8388736.0f;
}

// The word's weights as floats, before their scale.
template <QFormat F>
__device__ __forceinline__ void decode_word(const uint4& word, const float* table, float* out) {
  const uint32_t parts[4] = {word.x, word.y, word.z, word.w};
#pragma unroll
  for (int p = 0; p < 4; ++p) {
    if constexpr (F == QFormat::Int8) {
      const uint32_t biased = parts[p] ^ 0x80808080u;
#pragma unroll
      for (int k = 0; k < 4; ++k) out[4 * p + k] = int8_byte(biased, k);
    } else {
#pragma unroll
      for (int k = 0; k < 4; ++k) {  // byte k of the part: first code in its high nibble
        const uint32_t byte = (parts[p] >> (8 * k)) & 0xFFu;
        out[8 * p + 2 * k] = table[byte >> 4];
        out[8 * p + 2 * k + 1] = table[byte & 15u];
      }
    }
  }
}

template <typename T, QFormat F, int M>
__global__ void __launch_bounds__(kWarps * 32)
    quantized_gemv_kernel(QuantizedView w, const T* __restrict__ x, T* __restrict__ y, int m) {
  constexpr int K = weights_per_load<F>();
  constexpr int BYTES_PER_WEIGHT_X2 = (F == QFormat::Int8) ? 2 : 1;  // bytes of codes per 2 weights
  __shared__ float table[16];
  if (threadIdx.x < 16) table[threadIdx.x] = F == QFormat::Nf4 ? kNf4Levels[threadIdx.x] : float(threadIdx.x);
  __syncthreads();
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= w.rows) return;
  const int64_t cols = w.cols;
  const uint8_t* codes = static_cast<const uint8_t*>(w.codes) + row * cols * BYTES_PER_WEIGHT_X2 / 2;
  const int64_t row_block = row * (cols >> kBlockShift);  // the row's first scale block (4-bit formats)
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
      decode_word<F>(words[u], table, wv);
      float s = 1.0f, mn = 0.0f;  // the word's block scale (and INT4's minimum)
      if constexpr (F == QFormat::Nf4) {
        s = nf4_absmax(w, row_block + (k >> kBlockShift));
      } else if constexpr (F == QFormat::Int4) {
        const int64_t b = row_block + (k >> kBlockShift);
        s = __half2float(static_cast<const __half*>(w.scale)[b]);
        mn = __half2float(static_cast<const __half*>(w.minimum)[b]);
      }
#pragma unroll
      for (int r = 0; r < M; ++r) {
        if (r >= m) break;
        const T* xr = x + int64_t(r) * cols + k;
        float dot = 0.0f, xsum = 0.0f;
#pragma unroll
        for (int j = 0; j < K; j += vec16<T>()) {
          const Vec<T, vec16<T>()> xv = load<T, vec16<T>()>(xr + j);
#pragma unroll
          for (int e = 0; e < vec16<T>(); ++e) {
            const float xf = to_float(xv.v[e]);
            dot = fmaf(wv[j + e], xf, dot);
            if constexpr (F == QFormat::Int4) xsum += xf;
          }
        }
        if constexpr (F == QFormat::Int8) acc[r] += dot;
        else if constexpr (F == QFormat::Nf4) acc[r] = fmaf(dot, s, acc[r]);
        else acc[r] += dot * s + xsum * mn;
      }
    }
  }
  float row_scale = 1.0f;
  if constexpr (F == QFormat::Int8) row_scale = static_cast<const float*>(w.scale)[row] * 7.874015718698502e-3f;
#pragma unroll
  for (int r = 0; r < M; ++r) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], off);
  }
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < M; ++r)
      if (r < m) y[int64_t(r) * w.rows + row] = from_float<T>(acc[r] * row_scale);
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
  if (w.format != QFormat::Int8 && (w.block != (1 << kBlockShift) || w.cols % w.block != 0)) return false;
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
