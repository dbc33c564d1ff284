// Quantized weight formats of the frozen base, with ATen references (the slow,
// obviously-correct paths the CUDA kernels of kernels/dequantize.cu and
// kernels/quantized_gemv.cu are checked against). NF4 and INT8 as bitsandbytes
// stores them; INT4 is hyft's own inference format:
//   NF4: the weight flattened row-major in blocks of 64; per block absmax (float32,
//        the largest |w|); each element w / absmax rounded to the nearest of the 16
//        NormalFloat4 levels (ties to the lower), two codes a byte, the first in the
//        high nibble. Dequantized: level * absmax in float32, then cast. Optionally
//        the absmax values double-quantized to 8 bits, as bitsandbytes' 4-bit.
//   INT8: per output channel (row) absmax; q = round(w * 127 / absmax) as int8.
//        Dequantized: q * absmax * (1 / 127).
//   INT4: affine 4-bit: the weight flattened row-major in blocks of 64; per block
//        minimum m and scale s = (max - m) / 15, both stored as float16; each code
//        round((w - m) / s) in 0..15 (0 when s is 0), packed as NF4's. Dequantized:
//        code * s + m in float32 (two roundings, no fused multiply-add), then cast.
// Shapes: W (out, in); NF4 packed (out*in/2,), absmax (out*in/64,); INT8 q (out, in),
// absmax (out,); INT4 packed (out*in/2,), scale and minimum (out*in/64,).
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

namespace hyft::quant {

// The 16 NF4 levels, ascending (bitsandbytes' table).
const std::array<float, 16>& nf4_levels();

struct Nf4Weight {
  at::Tensor packed;  // (numel / 2,) uint8
  at::Tensor absmax;  // (ceil(numel / block),) float32; undefined when double-quantized
  // Double quantization (bitsandbytes' compress_statistics, QLoRA's): the absmax
  // values less their mean `offset`, quantized blockwise (kAbsmaxBlock) to 8 bits
  // over bitsandbytes' dynamic map `code`: absmax = code[absmax_codes] * absmax2 + offset.
  at::Tensor absmax_codes;  // (blocks,) uint8
  at::Tensor absmax2;       // (ceil(blocks / kAbsmaxBlock),) float32
  at::Tensor code;          // (256,) float32, dynamic_map()
  float offset = 0.0f;
  int64_t rows = 0, cols = 0, block = 64;
  bool double_quantized() const { return absmax_codes.defined(); }
};

constexpr int64_t kAbsmaxBlock = 256;

// bitsandbytes' signed 8-bit dynamic map (create_dynamic_map), (256,) float32 on `device`.
const at::Tensor& dynamic_map(const at::Device& device);

Nf4Weight quantize_nf4(const at::Tensor& w, int64_t block = 64, bool double_quant = false);
at::Tensor nf4_absmax(const Nf4Weight& q);                          // (blocks,) float32
at::Tensor dequantize_nf4(const Nf4Weight& q, at::ScalarType dtype);  // (rows, cols)

struct Int8Weight {
  at::Tensor q;       // (out, in) int8
  at::Tensor absmax;  // (out,) float32
};

Int8Weight quantize_int8(const at::Tensor& w);
at::Tensor dequantize_int8(const Int8Weight& q, at::ScalarType dtype);  // (out, in)

struct Int4Weight {
  at::Tensor packed;   // (numel / 2,) uint8
  at::Tensor scale;    // (ceil(numel / block),) float16
  at::Tensor minimum;  // (ceil(numel / block),) float16
  int64_t rows = 0, cols = 0, block = 64;
};

Int4Weight quantize_int4(const at::Tensor& w, int64_t block = 64);
at::Tensor dequantize_int4(const Int4Weight& q, at::ScalarType dtype);  // (rows, cols)

}  // namespace hyft::quant
