#include "quant/formats.h"

#include "common/error.h"

#include <ATen/ATen.h>

#include <cmath>
#include <map>
#include <mutex>
#include <string>

namespace hyft::quant {

const std::array<float, 16>& nf4_levels() {
  static const std::array<float, 16> levels = {
      -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
      -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
      0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f,
      1.0f};
  return levels;
}

namespace {

// A small constant tensor, `make()` built on the CPU, copied once to each device:
// dequantization runs in every projection's forward and backward pass, where a
// host copy would stall.
const at::Tensor& per_device(const std::string& name, const at::Device& device, at::Tensor (*make)()) {
  static std::mutex mutex;
  static std::map<std::string, at::Tensor> made;
  std::lock_guard<std::mutex> lock(mutex);
  at::Tensor& t = made[name + "@" + device.str()];
  if (!t.defined()) t = make().to(device);
  return t;
}

const at::Tensor& levels_tensor(const at::Device& device) {
  return per_device("nf4_levels", device, [] {
    const auto& l = nf4_levels();
    return at::tensor(std::vector<float>(l.begin(), l.end()), at::kFloat);
  });
}

// Two 4-bit codes a byte, the first in the high nibble: (n,) codes -> (n / 2,) bytes.
at::Tensor pack_nibbles(const at::Tensor& codes) {
  const int64_t n = codes.numel();
  return at::bitwise_or(at::bitwise_left_shift(codes.slice(0, 0, n, 2), 4), codes.slice(0, 1, n, 2));
}

// The inverse: (n / 2,) bytes -> (n,) int64 codes.
at::Tensor unpack_nibbles(const at::Tensor& packed) {
  at::Tensor codes = at::empty({packed.numel() * 2}, packed.options().dtype(at::kLong));
  codes.slice(0, 0, codes.numel(), 2).copy_(at::bitwise_right_shift(packed, 4));
  codes.slice(0, 1, codes.numel(), 2).copy_(at::bitwise_and(packed, 15));
  return codes;
}

// (n,) float32 -> (ceil(n / block), block), a short last block filled with its own
// last value (so its minimum, maximum and absmax stay its own).
at::Tensor padded_blocks(const at::Tensor& flat, int64_t block) {
  const int64_t n = flat.numel(), pad = (block - n % block) % block;
  if (pad == 0) return flat.view({-1, block});
  return at::cat({flat, flat.narrow(0, n - 1, 1).expand({pad})}).view({-1, block});
}

}  // namespace

namespace {

// bitsandbytes' blockwise quantization to the nearest of `code`'s sorted values:
// per block absmax, the values times (1 / absmax) clamped to [-1, 1], the index of
// the nearest code (a value on a midpoint goes lower). flat (n,) float32 ->
// {codes (n,) uint8, absmax (ceil(n / block),) float32}.
std::pair<at::Tensor, at::Tensor> quantize_blockwise(const at::Tensor& flat, const at::Tensor& code, int64_t block) {
  const int64_t n = flat.numel(), full = n - n % block;
  at::Tensor absmax = flat.narrow(0, 0, full).view({-1, block}).abs().amax(1);
  at::Tensor scaled = at::clamp(flat.narrow(0, 0, full).view({-1, block}) *
                                    (1.0 / absmax.clamp_min(1e-38)).view({-1, 1}),
                                -1.0, 1.0)
                          .reshape(-1);
  if (full < n) {  // a last, shorter block
    const at::Tensor tail = flat.narrow(0, full, n - full);
    const at::Tensor am = tail.abs().max().clamp_min(1e-38);
    absmax = at::cat({absmax, am.unsqueeze(0)});
    scaled = at::cat({scaled, at::clamp(tail / am, -1.0, 1.0)});
  }
  const int64_t k = code.numel();
  const at::Tensor midpoints = (code.narrow(0, 0, k - 1) + code.narrow(0, 1, k - 1)) / 2;
  return {at::bucketize(scaled, midpoints, /*out_int32=*/true).to(at::kByte), absmax};
}

// The inverse: code[codes] * absmax of each block, in float32.
at::Tensor dequantize_blockwise(const at::Tensor& codes, const at::Tensor& absmax, const at::Tensor& code,
                                int64_t block) {
  const int64_t n = codes.numel(), full = n - n % block;
  const at::Tensor values = code.index_select(0, codes.to(at::kLong));
  at::Tensor out = at::empty({n}, values.options());
  out.narrow(0, 0, full).view({-1, block}).copy_(values.narrow(0, 0, full).view({-1, block}) *
                                                   absmax.narrow(0, 0, full / block).view({-1, 1}));
  if (full < n) out.narrow(0, full, n - full).copy_(values.narrow(0, full, n - full) * absmax[full / block]);
  return out;
}

}  // namespace

const at::Tensor& dynamic_map(const at::Device& device) {
  return per_device("dynamic_map", device, [] {
    // bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8),
    // with the same ATen operations so the float32 values are the same: for
    // exponent i in 0..6, the midpoints of linspace(0.1, 1, 2^i + 1) times 10^(i-6),
    // both signs; then 0 and 1; sorted.
    std::vector<at::Tensor> parts;
    for (int i = 0; i < 7; ++i) {
      const at::Tensor b = at::linspace(0.1, 1.0, (int64_t(1) << i) + 1, at::kFloat);
      const at::Tensor means = (b.narrow(0, 0, b.numel() - 1) + b.narrow(0, 1, b.numel() - 1)) / 2.0;
      const double scale = std::pow(10.0, double(i - 6));
      parts.push_back(means * scale);
      parts.push_back(means * -scale);
    }
    parts.push_back(at::tensor(std::vector<float>{0.0f, 1.0f}, at::kFloat));
    at::Tensor map = std::get<0>(at::sort(at::cat(parts)));
    TORCH_INTERNAL_ASSERT(map.numel() == 256, "dynamic_map: 256 values expected");
    return map;
  });
}

Nf4Weight quantize_nf4(const at::Tensor& w, int64_t block, bool double_quant) {
  TORCH_INTERNAL_ASSERT(w.dim() == 2 && block > 0 && w.numel() % 2 == 0, "quantize_nf4: bad weight");
  Nf4Weight q;
  q.rows = w.size(0);
  q.cols = w.size(1);
  q.block = block;
  auto [codes, absmax] = quantize_blockwise(w.reshape(-1).to(at::kFloat), levels_tensor(w.device()), block);
  q.packed = pack_nibbles(codes);
  if (!double_quant) {
    q.absmax = absmax;
    return q;
  }
  // The absmax values, less their mean, blockwise to 8 bits over the dynamic map
  // (bitsandbytes' compress_statistics).
  const at::Tensor offset = absmax.mean();
  auto [acodes, absmax2] = quantize_blockwise(absmax - offset, dynamic_map(w.device()), kAbsmaxBlock);
  q.absmax_codes = acodes;
  q.absmax2 = absmax2;
  q.offset = offset.item<float>();
  q.code = dynamic_map(w.device());
  return q;
}

at::Tensor nf4_absmax(const Nf4Weight& q) {
  if (!q.double_quantized()) return q.absmax;
  // code[c] * absmax2 of its block, then + offset: two float32 roundings, as bitsandbytes.
  return dequantize_blockwise(q.absmax_codes, q.absmax2, q.code, kAbsmaxBlock) + q.offset;
}

at::Tensor dequantize_nf4(const Nf4Weight& q, at::ScalarType dtype) {
  const at::Tensor codes = unpack_nibbles(q.packed);
  return dequantize_blockwise(codes, nf4_absmax(q), levels_tensor(q.packed.device()), q.block)
      .view({q.rows, q.cols})
      .to(dtype);
}

Int8Weight quantize_int8(const at::Tensor& w) {
  TORCH_INTERNAL_ASSERT(w.dim() == 2, "quantize_int8: bad weight");
  Int8Weight q;
  const at::Tensor f = w.to(at::kFloat);
  q.absmax = f.abs().amax(1);  // (out,)
  // 127 / absmax as bitsandbytes computes it (Python's 127.0 / t is t.reciprocal() * 127).
  const at::Tensor scale = q.absmax.clamp_min(1e-38).reciprocal() * 127.0;
  q.q = at::round(f * scale.unsqueeze(1)).clamp(-127, 127).to(at::kChar);
  return q;
}

at::Tensor dequantize_int8(const Int8Weight& q, at::ScalarType dtype) {
  // q * absmax * (1 / 127), in that order (bitsandbytes' int8_vectorwise_dequant).
  return (q.q.to(at::kFloat) * q.absmax.unsqueeze(1) * 7.874015718698502e-3).to(dtype);
}

Int4Weight quantize_int4(const at::Tensor& w, int64_t block) {
  TORCH_INTERNAL_ASSERT(w.dim() == 2 && block > 0 && w.numel() % 2 == 0, "quantize_int4: bad weight");
  Int4Weight q;
  q.rows = w.size(0);
  q.cols = w.size(1);
  q.block = block;
  const int64_t n = w.numel();
  const at::Tensor blocks = padded_blocks(w.reshape(-1).to(at::kFloat), block);  // (nb, block)
  const at::Tensor lo = blocks.amin(1), hi = blocks.amax(1);
  q.minimum = lo.to(at::kHalf);
  q.scale = ((hi - lo) / 15.0).to(at::kHalf);
  // Codes from the stored (float16) scale and minimum, so the rounding is to what
  // dequantization will compute.
  const at::Tensor s = q.scale.to(at::kFloat).unsqueeze(1), m = q.minimum.to(at::kFloat).unsqueeze(1);
  const at::Tensor codes = at::where(s > 0, at::round((blocks - m) / s.clamp_min(1e-30)), at::zeros_like(blocks))
                               .clamp(0, 15)
                               .reshape(-1)
                               .narrow(0, 0, n)
                               .to(at::kByte);
  q.packed = pack_nibbles(codes);
  return q;
}

at::Tensor dequantize_int4(const Int4Weight& q, at::ScalarType dtype) {
  const int64_t n = q.rows * q.cols, nb = q.scale.numel();
  at::Tensor codes = unpack_nibbles(q.packed).to(at::kFloat);  // (n,)
  const int64_t pad = nb * q.block - n;
  if (pad > 0) codes = at::cat({codes, at::zeros({pad}, codes.options())});
  const at::Tensor out = codes.view({nb, q.block}) * q.scale.to(at::kFloat).unsqueeze(1) +
                         q.minimum.to(at::kFloat).unsqueeze(1);
  return out.reshape(-1).narrow(0, 0, n).view({q.rows, q.cols}).to(dtype);
}

}  // namespace hyft::quant
