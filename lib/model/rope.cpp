#include "model/rope.h"

#include <ATen/ATen.h>

#include <cmath>

namespace hyft::model {

RotaryEmbedding::RotaryEmbedding(const LlamaConfig& config) : config_(config) {}

namespace {
// 1 / base^(2i/dim) in float32, as the reference computes it; base (...,) -> (..., dim/2).
at::Tensor base_inv_freq(const at::Tensor& base, int64_t dim) {
  at::Tensor exponent = at::arange(0, dim, 2, base.options().dtype(at::kLong)).to(at::kFloat) / double(dim);
  return 1.0 / at::pow(base.unsqueeze(-1), exponent);
}
}  // namespace

at::Tensor RotaryEmbedding::inv_freq(const at::Device& device) const {
  const RopeScaling& rs = config_.rope_scaling;
  at::Tensor base = at::scalar_tensor(config_.rope_theta, at::TensorOptions().dtype(at::kFloat).device(device));
  at::Tensor inv = base_inv_freq(base, config_.head_dim);  // (Dh/2,)
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

at::Tensor RotaryEmbedding::dynamic_inv_freq(const at::Tensor& seq_lens) const {
  const double factor = config_.rope_scaling.factor;
  const double max_len = double(config_.max_position_embeddings);
  const int64_t dim = config_.head_dim;
  at::Tensor len = at::clamp_min(seq_lens.to(at::kFloat), max_len);  // (B,)
  at::Tensor base = config_.rope_theta * at::pow(factor * len / max_len - (factor - 1.0),
                                                 double(dim) / double(dim - 2));
  return base_inv_freq(base, dim);  // (B, Dh/2)
}

std::pair<at::Tensor, at::Tensor> RotaryEmbedding::cos_sin(const at::Tensor& position_ids,
                                                           at::ScalarType dtype) const {
  at::Tensor pos = position_ids.to(at::kFloat).unsqueeze(-1);  // (B, T, 1)
  at::Tensor freqs;                                            // (B, T, Dh/2)
  if (config_.rope_scaling.type == RopeType::Dynamic)
    freqs = pos * dynamic_inv_freq(position_ids.amax(1) + 1).unsqueeze(1);
  else
    freqs = pos * inv_freq(position_ids.device());
  at::Tensor emb = at::cat({freqs, freqs}, -1);  // (B, T, Dh)
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

}  // namespace hyft::model
