#include "quant/nf4.h"

#include "common/error.h"

#include <ATen/ATen.h>

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

// The levels as a tensor on `device`, made once per device: dequantization runs in
// every projection's forward and backward pass, where a host copy would stall.
const at::Tensor& levels_tensor(const at::Device& device) {
  static std::mutex mutex;
  static std::map<std::string, at::Tensor> made;
  std::lock_guard<std::mutex> lock(mutex);
  at::Tensor& t = made[device.str()];
  if (!t.defined()) {
    const auto& l = nf4_levels();
    t = at::tensor(std::vector<float>(l.begin(), l.end()), at::kFloat).to(device);
  }
  return t;
}

}  // namespace

Nf4Weight quantize_nf4(const at::Tensor& w, int64_t block) {
  TORCH_INTERNAL_ASSERT(w.dim() == 2 && block > 0 && w.numel() % 2 == 0, "quantize_nf4: bad weight");
  Nf4Weight q;
  q.rows = w.size(0);
  q.cols = w.size(1);
  q.block = block;
  const at::Tensor flat = w.reshape(-1).to(at::kFloat);
  const int64_t n = flat.numel(), full = n - n % block;
  // Per block: absmax, then w / absmax (as w * (1 / absmax), clamped to [-1, 1]).
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
  // The nearest level: which midpoint interval (a value on a midpoint goes lower).
  const at::Tensor levels = levels_tensor(w.device());
  const at::Tensor midpoints = (levels.narrow(0, 0, 15) + levels.narrow(0, 1, 15)) / 2;
  const at::Tensor codes = at::bucketize(scaled, midpoints, /*out_int32=*/true).to(at::kByte);  // (n,)
  q.packed = at::bitwise_or(at::bitwise_left_shift(codes.slice(0, 0, n, 2), 4), codes.slice(0, 1, n, 2));
  q.absmax = absmax;
  return q;
}

at::Tensor dequantize_nf4(const Nf4Weight& q, at::ScalarType dtype) {
  const int64_t n = q.rows * q.cols;
  at::Tensor codes = at::empty({n}, q.packed.options().dtype(at::kLong));
  codes.slice(0, 0, n, 2).copy_(at::bitwise_right_shift(q.packed, 4));
  codes.slice(0, 1, n, 2).copy_(at::bitwise_and(q.packed, 15));
  const at::Tensor values = levels_tensor(q.packed.device()).index_select(0, codes);  // float32
  const int64_t full = n - n % q.block;
  at::Tensor out = at::empty({n}, values.options());
  out.narrow(0, 0, full).view({-1, q.block}).copy_(values.narrow(0, 0, full).view({-1, q.block}) *
                                                     q.absmax.narrow(0, 0, full / q.block).view({-1, 1}));
  if (full < n) out.narrow(0, full, n - full).copy_(values.narrow(0, full, n - full) * q.absmax[full / q.block]);
  return out.view({q.rows, q.cols}).to(dtype);
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

}  // namespace hyft::quant
