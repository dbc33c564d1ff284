#include "adapters/merge.h"

#include "common/error.h"

#include <ATen/ATen.h>

namespace hyft::adapters {

namespace {
at::Tensor lora_delta(const at::Tensor& W, const at::Tensor& A, const at::Tensor& B, double scaling) {
  TORCH_INTERNAL_ASSERT(W.dim() == 2 && A.dim() == 2 && B.dim() == 2);
  TORCH_INTERNAL_ASSERT(A.size(1) == W.size(1) && B.size(0) == W.size(0) && B.size(1) == A.size(0),
                        "LoRA shapes do not fit the weight: W ", W.sizes(), " A ", A.sizes(), " B ", B.sizes());
  return at::matmul(B.to(W.device(), at::kFloat), A.to(W.device(), at::kFloat)) * scaling;  // (out, in)
}
}  // namespace

at::Tensor merge_lora(const at::Tensor& W, const at::Tensor& A, const at::Tensor& B, double scaling,
                      at::ScalarType out_dtype) {
  return (W.to(at::kFloat) + lora_delta(W, A, B, scaling)).to(out_dtype);
}

at::Tensor unmerge_lora(const at::Tensor& W, const at::Tensor& A, const at::Tensor& B, double scaling,
                        at::ScalarType out_dtype) {
  return (W.to(at::kFloat) - lora_delta(W, A, B, scaling)).to(out_dtype);
}

}  // namespace hyft::adapters
