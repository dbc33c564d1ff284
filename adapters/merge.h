// Merging a LoRA adapter into base weights, as pure functions over
// tensors: W' = W + scaling * B A computed in float32, then cast to the output
// dtype; unmerge subtracts the same product.
#pragma once

#include <ATen/core/Tensor.h>

namespace hyft::adapters {

// W (out, in), A (r, in), B (out, r) -> W + scaling * B A in `out_dtype`.
at::Tensor merge_lora(const at::Tensor& W, const at::Tensor& A, const at::Tensor& B, double scaling,
                      at::ScalarType out_dtype);
// W' (out, in) -> W' - scaling * B A in `out_dtype`.
at::Tensor unmerge_lora(const at::Tensor& W, const at::Tensor& A, const at::Tensor& B, double scaling,
                        at::ScalarType out_dtype);

}  // namespace hyft::adapters
