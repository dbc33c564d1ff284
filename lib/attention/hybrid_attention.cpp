#include "attention/hybrid_attention.h"

#include "common/error.h"

#include <ATen/ATen.h>

#include <cmath>

namespace hyft::attention {

int64_t HybridSettings::global_stride() const {
  if (global_ratio <= 0.0) return 0;
  return static_cast<int64_t>(std::floor(1.0 / global_ratio + 0.5));
}

void validate(const HybridSettings& s, const char* source) {
  HYFT_CHECK(s.window_size >= 0, source, ": window size must be >= 0 (0 = unlimited), got ",
             s.window_size);
  HYFT_CHECK(s.global_ratio >= 0.0 && s.global_ratio < 1.0, source,
             ": global ratio must be in [0, 1), got ", s.global_ratio,
             "; 0.1 to 0.3 is usual");
}

bool may_attend(const HybridSettings& s, int64_t i, int64_t j) {
  if (j > i) return false;
  if (s.window_size == 0 || i - j < s.window_size) return true;
  const int64_t stride = s.global_stride();
  return stride > 0 && (j % stride == 0 || i % stride == 0);
}

at::Tensor reference_mask(const HybridSettings& s, const Layout& layout) {
  at::Tensor pos = layout.position_ids.to(at::kCPU).contiguous();
  at::Tensor doc = layout.document_ids.defined() ? layout.document_ids.to(at::kCPU).contiguous()
                                                 : at::zeros_like(pos);
  const int64_t B = pos.size(0), T = pos.size(1);
  at::Tensor mask = at::zeros({B, 1, T, T}, at::kBool);
  auto p = pos.accessor<int64_t, 2>();
  auto d = doc.accessor<int64_t, 2>();
  auto m = mask.accessor<bool, 4>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t qi = 0; qi < T; ++qi)
      for (int64_t kj = 0; kj <= qi; ++kj)
        m[b][0][qi][kj] = d[b][qi] == d[b][kj] && may_attend(s, p[b][qi], p[b][kj]);
  return mask.to(layout.position_ids.device());
}

at::Tensor hybrid_mask(const HybridSettings& s, const Layout& layout) {
  const at::Tensor& pos = layout.position_ids;  // (B, T)
  const int64_t T = pos.size(1);
  auto idx = at::arange(T, pos.options());
  at::Tensor allowed = idx.unsqueeze(1) >= idx.unsqueeze(0);  // (T, T): key index <= query index
  allowed = allowed.unsqueeze(0);                             // (1, T, T)
  if (layout.document_ids.defined())
    allowed = allowed & (layout.document_ids.unsqueeze(2) == layout.document_ids.unsqueeze(1));
  if (s.window_size > 0) {
    at::Tensor pi = pos.unsqueeze(2), pj = pos.unsqueeze(1);  // (B, T, 1), (B, 1, T)
    at::Tensor near = (pi - pj) < s.window_size;
    if (const int64_t stride = s.global_stride(); stride > 0)
      near = near | (pj.remainder(stride) == 0) | (pi.remainder(stride) == 0);
    allowed = allowed & near;
  }
  return allowed.expand({pos.size(0), T, T}).unsqueeze(1);  // (B, 1, T, T)
}

AttentionMask make_attention_mask(const HybridSettings& s, const Layout& layout, bool dense) {
  const int64_t T = layout.position_ids.size(1);
  AttentionMask mask;
  mask.rule = s;
  mask.layout = layout;
  if (s.is_full_causal(T) && !layout.document_ids.defined()) return mask;
  mask.causal = false;
  if (dense) mask.allowed = hybrid_mask(s, layout);
  return mask;
}

namespace {

// Whether a query at pi may see a key at pj of its own sequence (broadcasting).
at::Tensor allowed_by_rule(const HybridSettings& s, const at::Tensor& pi, const at::Tensor& pj) {
  at::Tensor allowed = pj <= pi;
  if (s.window_size > 0) {
    at::Tensor near = (pi - pj) < s.window_size;
    if (const int64_t stride = s.global_stride(); stride > 0)
      near = near | (pj.remainder(stride) == 0) | (pi.remainder(stride) == 0);
    allowed = allowed & near;
  }
  return allowed;
}

}  // namespace

AttentionMask make_cached_attention_mask(const HybridSettings& s, int64_t q_start, int64_t Tq,
                                        const at::Device& device, bool dense) {
  const int64_t Tk = q_start + Tq;
  AttentionMask mask;
  mask.causal = false;
  mask.rule = s;
  mask.q_start = q_start;
  if (Tq == 1 && s.is_full_causal(Tk)) return mask;
  if (q_start == 0 && s.is_full_causal(Tk)) {
    mask.causal = true;
    return mask;
  }
  if (!dense) return mask;
  auto opts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor pi = at::arange(q_start, Tk, opts).unsqueeze(1);  // (Tq, 1)
  at::Tensor pj = at::arange(0, Tk, opts).unsqueeze(0);        // (1, Tk)
  mask.allowed = allowed_by_rule(s, pi, pj).unsqueeze(0).unsqueeze(0);  // (1, 1, Tq, Tk)
  return mask;
}

AttentionMask make_slot_attention_mask(const HybridSettings& s, const at::Tensor& positions, int64_t keys) {
  AttentionMask mask;
  mask.causal = false;
  mask.rule = s;
  at::Tensor pi = positions.view({-1, 1});                       // (B, 1)
  at::Tensor pj = at::arange(keys, positions.options()).view({1, -1});  // (1, keys)
  mask.allowed = allowed_by_rule(s, pi, pj).unsqueeze(1).unsqueeze(1);  // (B, 1, 1, keys)
  return mask;
}

at::Tensor attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const AttentionMask& mask) {
  const int64_t H = q.size(1), Hkv = k.size(1), T = q.size(2), Dh = q.size(3);
  at::Tensor kr = k.repeat_interleave(H / Hkv, 1);  // (B, H, T, Dh)
  at::Tensor vr = v.repeat_interleave(H / Hkv, 1);
  at::Tensor scores = at::matmul(q, kr.transpose(2, 3)) / std::sqrt(double(Dh));  // (B, H, T, T)
  if (mask.causal || mask.allowed.defined()) {
    const at::Tensor allowed = mask.causal ? at::ones({T, kr.size(2)}, q.options().dtype(at::kBool)).tril()
                                           : mask.allowed;
    scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  }
  at::Tensor probs = at::softmax(scores.to(at::kFloat), -1).to(q.scalar_type());
  return at::matmul(probs, vr);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionMask& mask) {
  const bool gqa = q.size(1) != k.size(1);
  if (mask.causal)
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, 0.0, /*is_causal=*/true,
                                            std::nullopt, gqa);
  return at::scaled_dot_product_attention(q, k, v, mask.allowed.defined() ? std::optional<at::Tensor>(mask.allowed)
                                                                          : std::nullopt,
                                          0.0, false, std::nullopt, gqa);
}

}  // namespace hyft::attention
