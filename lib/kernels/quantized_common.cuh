// What the quantized-weight kernels share (dequantize.cu, quantized_gemv.cu): the
// NF4 levels and the value of one code in each format, written as the ATen
// references of quant/formats.h compute it (float32, no fused multiply-add).
#pragma once

#include "kernels/cuda_common.cuh"

#include <cstdint>

namespace hyft::kernels::cuda {

// bitsandbytes' NF4 table, ascending (quant::nf4_levels()).
static __constant__ float kNf4Levels[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f,
    1.0f};

// NF4's absmax of block b: stored, or decoded from its double quantization as
// bitsandbytes does (code8[c] * scale2[b / 256], then + offset).
__device__ __forceinline__ float nf4_absmax(const QuantizedView& w, int64_t b) {
  if (w.scale2 == nullptr) return static_cast<const float*>(w.scale)[b];
  const uint8_t c = static_cast<const uint8_t*>(w.scale)[b];
  return __fadd_rn(__fmul_rn(w.code8[c], w.scale2[b >> 8]), w.offset);
}

// The value of 4-bit `code` in scale block `b`; `levels` is kNf4Levels in shared memory.
template <QFormat F>
__device__ __forceinline__ float decode_4bit(int code, int64_t b, const float* levels, const QuantizedView& w) {
  if constexpr (F == QFormat::Nf4) {
    return __fmul_rn(levels[code], nf4_absmax(w, b));
  } else {
    const float s = __half2float(static_cast<const __half*>(w.scale)[b]);
    const float m = __half2float(static_cast<const __half*>(w.minimum)[b]);
    return __fadd_rn(__fmul_rn(float(code), s), m);
  }
}

// int4_gemv_mma.cu: y (m, rows) = x (m, cols) W^T for INT4 W and 1-8 rows of bf16 or
// fp16 x on the tensor cores; false (nothing launched) where the shape or dtype does
// not suit it (rows % 16, cols % 256, float32), and quantized_gemv takes its own.
bool int4_gemv_mma(const QuantizedView& w, const void* x, void* y, int64_t m, DType dtype, cudaStream_t stream);

// INT8: q * absmax * (1 / 127), the two products in that order.
__device__ __forceinline__ float decode_int8(int8_t q, float absmax) {
  return __fmul_rn(__fmul_rn(float(q), absmax), 7.874015718698502e-3f);
}

}  // namespace hyft::kernels::cuda
