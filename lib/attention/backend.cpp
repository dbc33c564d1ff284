#include "attention/backend.h"

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

}  // namespace

const AttentionBackend& sdpa_backend() {
  static const SdpaBackend backend;
  return backend;
}

const AttentionBackend& reference_backend() {
  static const ReferenceBackend backend;
  return backend;
}

}  // namespace hyft::attention
