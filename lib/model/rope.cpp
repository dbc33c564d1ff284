#include "model/rope.h"

#include <ATen/ATen.h>

#include <cmath>

namespace hyft::model {

RotaryEmbedding::RotaryEmbedding(const LlamaConfig& config) : config_(config) {}

at::Tensor RotaryEmbedding::inv_freq(int64_t seq_len, const at::Device& device) const {
  const int64_t dim = config_.head_dim;
  const RopeScaling& rs = config_.rope_scaling;
  double base = config_.rope_theta;
  if (rs.type == RopeType::Dynamic && seq_len > config_.max_position_embeddings) {
    const double ratio = rs.factor * double(seq_len) / double(config_.max_position_embeddings);
    base *= std::pow(ratio - (rs.factor - 1.0), double(dim) / double(dim - 2));
  }
  // float32 throughout, as the reference computes it: 1 / base^(2i/dim)
  auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  at::Tensor exponent = at::arange(0, dim, 2, f32.dtype(at::kLong)).to(at::kFloat) / double(dim);
  at::Tensor inv = 1.0 / at::pow(at::scalar_tensor(base, f32), exponent);

  if (rs.type == RopeType::Linear) inv = inv / rs.factor;
  if (rs.type == RopeType::Llama3) {
    // Long wavelengths are divided by factor, short ones kept, the band between
    // interpolated smoothly (Llama 3.1).
    const double old_len = double(rs.original_max_position_embeddings);
    const double low_wavelen = old_len / rs.low_freq_factor;
    const double high_wavelen = old_len / rs.high_freq_factor;
    at::Tensor wavelen = 2.0 * M_PI / inv;
    at::Tensor scaled = at::where(wavelen > low_wavelen, inv / rs.factor, inv);
    at::Tensor smooth = (old_len / wavelen - rs.low_freq_factor) /
                        (rs.high_freq_factor - rs.low_freq_factor);
    at::Tensor smoothed = (1.0 - smooth) * scaled / rs.factor + smooth * scaled;
    at::Tensor medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    inv = at::where(medium, smoothed, scaled);
  }
  return inv;
}

std::pair<at::Tensor, at::Tensor> RotaryEmbedding::cos_sin(const at::Tensor& position_ids,
                                                           at::ScalarType dtype) const {
  const int64_t seq_len =
      config_.rope_scaling.type == RopeType::Dynamic ? position_ids.max().item<int64_t>() + 1 : 0;
  at::Tensor inv = inv_freq(seq_len, position_ids.device());        // (Dh/2,)
  at::Tensor freqs = position_ids.to(at::kFloat).unsqueeze(-1) * inv;  // (B, T, Dh/2)
  at::Tensor emb = at::cat({freqs, freqs}, -1);                      // (B, T, Dh)
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor x1 = x.narrow(-1, 0, half);
  at::Tensor x2 = x.narrow(-1, half, half);
  at::Tensor rotated = at::cat({-x2, x1}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

}  // namespace hyft::model
