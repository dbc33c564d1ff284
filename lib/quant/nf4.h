// Quantized weight formats of the frozen base, as bitsandbytes stores them, with
// ATen references (the slow, obviously-correct paths the GPU kernels are checked
// against):
//   NF4: the weight flattened row-major in blocks of 64; per block absmax (float32,
//        the largest |w|); each element w / absmax rounded to the nearest of the 16
//        NormalFloat4 levels (ties to the lower), two codes a byte, the first in the
//        high nibble. Dequantized: level * absmax in float32, then cast.
//   INT8: per output channel (row) absmax; q = round(w * 127 / absmax) as int8.
//        Dequantized: q * absmax * (1 / 127).
// Shapes: W (out, in); NF4 packed (out*in/2,), absmax (out*in/64,); INT8 q (out, in),
// absmax (out,).
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

namespace hyft::quant {

// The 16 NF4 levels, ascending (bitsandbytes' table).
const std::array<float, 16>& nf4_levels();

struct Nf4Weight {
  at::Tensor packed;  // (numel / 2,) uint8
  at::Tensor absmax;  // (ceil(numel / block),) float32
  int64_t rows = 0, cols = 0, block = 64;
};

Nf4Weight quantize_nf4(const at::Tensor& w, int64_t block = 64);
at::Tensor dequantize_nf4(const Nf4Weight& q, at::ScalarType dtype);  // (rows, cols)

struct Int8Weight {
  at::Tensor q;       // (out, in) int8
  at::Tensor absmax;  // (out,) float32
};

Int8Weight quantize_int8(const at::Tensor& w);
at::Tensor dequantize_int8(const Int8Weight& q, at::ScalarType dtype);  // (out, in)

}  // namespace hyft::quant
