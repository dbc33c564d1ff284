#include "attention/backend.h"

#include "attention/flash_attention.h"

namespace hyft::attention {

namespace {

class SdpaBackend final : public AttentionBackend {
 public:
  const char* name() const override { return "sdpa"; }
  at::Tensor forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionMask& mask) const override {
    return attention(q, k, v, mask);
  }
};

class ReferenceBackend final : public AttentionBackend {
 public:
  const char* name() const override { return "reference"; }
  at::Tensor forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionMask& mask) const override {
    return attention_reference(q, k, v, mask);
  }
};

// The flash path where it applies (flash_attention.h), else SDPA with the dense
// mask, built once per forward pass on first need.
class FlashBackend final : public AttentionBackend {
 public:
  const char* name() const override { return "flash"; }
  bool needs_dense_mask() const override { return false; }
  at::Tensor forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionMask& mask) const override {
    if (fast_attention_supports(q, mask)) return fast_attention(q, k, v, mask);
    if (mask.causal || mask.allowed.defined() || !mask.layout.position_ids.defined()) return attention(q, k, v, mask);
    if (!mask.lazy_allowed.defined()) mask.lazy_allowed = hybrid_mask(mask.rule, mask.layout);
    AttentionMask dense = mask;
    dense.allowed = mask.lazy_allowed;
    return attention(q, k, v, dense);
  }
};

}  // namespace

const AttentionBackend& flash_backend() {
  static const FlashBackend backend;
  return backend;
}

const AttentionBackend& default_backend(const at::Device& device) {
  return device.is_cuda() ? flash_backend() : sdpa_backend();
}

const AttentionBackend& sdpa_backend() {
  static const SdpaBackend backend;
  return backend;
}

const AttentionBackend& reference_backend() {
  static const ReferenceBackend backend;
  return backend;
}

}  // namespace hyft::attention
