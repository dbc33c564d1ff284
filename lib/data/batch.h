// Turning examples into the tensors of one forward pass: input_ids and labels
// (B, T), and the attention layout (positions, documents). Rows are padded on the
// right to the longest; padding has label kIgnoreIndex and position 0, and, in packed
// rows, a document of its own.
#pragma once

#include "attention/hybrid_attention.h"
#include "data/example.h"
#include "data/packing.h"

#include <vector>

namespace hyft::data {

struct Batch {
  at::Tensor input_ids, labels;  // (B, T) int64
  attention::Layout layout;
  int64_t tokens = 0;            // real (non-pad) tokens
  int64_t targets = 0;           // tokens that carry a loss
};

Batch make_batch(const std::vector<const Example*>& examples, const at::Device& device);
Batch make_packed_batch(const std::vector<PackedRow>& rows, const at::Device& device);

}  // namespace hyft::data
