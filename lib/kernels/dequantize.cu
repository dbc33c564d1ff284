// Dequantization of the frozen base's weights (quant/formats.h) to float32, bf16
// or fp16, one pass over the codes: what the quantized projection runs before its
// GEMM in training and prefill. References: quant::dequantize_nf4 / _int8 / _int4.
//   NF4   out[i] = T(levels[code(i)] * absmax[i / block])
//   INT8  out[r, c] = T(float(q[r, c]) * absmax[r] * (1 / 127))
//   INT4  out[i] = T(float(code(i)) * scale[i / block] + minimum[i / block])
// The float32 arithmetic is the reference's operation by operation (no fused
// multiply-add), so the outputs are equal bit for bit. VEC elements per thread.
#include "kernels/cuda_common.cuh"
#include "kernels/quantized_common.cuh"

namespace hyft::kernels::cuda {

namespace {

constexpr int kThreads = 256;

// 4-bit formats: VEC elements per thread (VEC / 2 bytes of codes); with VEC == 8
// the block size is a multiple of 8, so one scale serves the thread's elements.
template <typename T, int VEC, QFormat F, bool BLOCK64>
__global__ void dequantize_4bit_kernel(const QuantizedView w, T* __restrict__ out, int64_t n, int64_t block) {
  const uint8_t* __restrict__ codes = static_cast<const uint8_t*>(w.codes);
  __shared__ float levels[16];
  if (threadIdx.x < 16) levels[threadIdx.x] = kNf4Levels[threadIdx.x];
  __syncthreads();
  const int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * VEC;
  if (i >= n) return;
  uint8_t bytes[VEC / 2];
  if constexpr (VEC == 8) {
    const uint32_t word = *reinterpret_cast<const uint32_t*>(codes + i / 2);
#pragma unroll
    for (int b = 0; b < 4; ++b) bytes[b] = uint8_t(word >> (8 * b));  // little-endian: byte b first
  } else {
#pragma unroll
    for (int b = 0; b < VEC / 2; ++b) bytes[b] = codes[i / 2 + b];
  }
  Vec<T, VEC> o;
#pragma unroll
  for (int k = 0; k < VEC; ++k) {
    const int code = (k % 2 == 0) ? (bytes[k / 2] >> 4) : (bytes[k / 2] & 15);
    const int64_t b = (VEC == 8) ? (BLOCK64 ? i >> 6 : i / block) : (i + k) / block;
    o.v[k] = from_float<T>(decode_4bit<F>(code, b, levels, w));
  }
  store<T, VEC>(out + i, o);
}

// INT8: VEC elements of one row per thread (cols % VEC == 0 when VEC > 1).
template <typename T, int VEC>
__global__ void dequantize_int8_kernel(const int8_t* __restrict__ q, const float* __restrict__ absmax,
                                       T* __restrict__ out, int64_t n, int64_t cols) {
  const int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * VEC;
  if (i >= n) return;
  const float a = absmax[i / cols];
  Vec<int8_t, VEC> c;
  if constexpr (VEC == 8) c = load<int8_t, 8>(q + i);
  else c.v[0] = q[i];
  Vec<T, VEC> o;
#pragma unroll
  for (int k = 0; k < VEC; ++k) o.v[k] = from_float<T>(decode_int8(c.v[k], a));
  store<T, VEC>(out + i, o);
}

template <typename T, int VEC>
void launch_4bit(const QuantizedView& w, T* out, int64_t n, cudaStream_t stream) {
  const unsigned grid = blocks_for(n / VEC, kThreads);
  // Blocks of 64 (the formats' own) index their scale by a shift, not a division.
  const bool b64 = VEC == 8 && w.block == 64;
  if (w.format == QFormat::Nf4 && b64)
    dequantize_4bit_kernel<T, VEC, QFormat::Nf4, true><<<grid, kThreads, 0, stream>>>(w, out, n, w.block);
  else if (w.format == QFormat::Nf4)
    dequantize_4bit_kernel<T, VEC, QFormat::Nf4, false><<<grid, kThreads, 0, stream>>>(w, out, n, w.block);
  else if (b64)
    dequantize_4bit_kernel<T, VEC, QFormat::Int4, true><<<grid, kThreads, 0, stream>>>(w, out, n, w.block);
  else
    dequantize_4bit_kernel<T, VEC, QFormat::Int4, false><<<grid, kThreads, 0, stream>>>(w, out, n, w.block);
}

}  // namespace

void dequantize(const QuantizedView& w, void* out_ptr, DType dtype, cudaStream_t stream) {
  const int64_t n = w.rows * w.cols;
  if (n == 0) return;
  dispatch(dtype, [&](auto zero) {
    using T = decltype(zero);
    T* out = static_cast<T*>(out_ptr);
    const bool out_vec = (reinterpret_cast<uintptr_t>(out) % (8 * sizeof(T))) == 0;
    if (w.format == QFormat::Int8) {
      const auto* q = static_cast<const int8_t*>(w.codes);
      const auto* a = static_cast<const float*>(w.scale);
      if (w.cols % 8 == 0 && out_vec && reinterpret_cast<uintptr_t>(q) % 8 == 0)
        dequantize_int8_kernel<T, 8><<<blocks_for(n / 8, kThreads), kThreads, 0, stream>>>(q, a, out, n, w.cols);
      else
        dequantize_int8_kernel<T, 1><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(q, a, out, n, w.cols);
    } else {
      if (n % 8 == 0 && w.block % 8 == 0 && out_vec && reinterpret_cast<uintptr_t>(w.codes) % 4 == 0)
        launch_4bit<T, 8>(w, out, n, stream);
      else
        launch_4bit<T, 2>(w, out, n, stream);
    }
    check_launch("dequantize");
  });
}

}  // namespace hyft::kernels::cuda
