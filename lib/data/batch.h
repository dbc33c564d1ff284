// Turning examples into the tensors of one forward pass: input_ids and labels
// (B, T), and the attention layout (positions, documents). Rows are padded on the
// right to the longest; padding has label kIgnoreIndex and position 0, and, in packed
// rows, a document of its own. Or padding-free: the examples as the documents of one
// row (1, sum of lengths), positions restarting at each, which computes the same
// loss as the padded batch (the first token of each example carries none in both)
// without the padding's projections and MLPs; on CUDA the flash path takes the
// documents without a dense mask (lib/attention).
#pragma once

#include "attention/hybrid_attention.h"
#include "data/example.h"
#include "data/packing.h"

#include <string>
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
Batch make_padding_free_batch(const std::vector<const Example*>& examples, const at::Device& device);

// --padding-free: auto (on CUDA, when padding would take at least a tenth of the
// padded batch), on, off.
enum class PaddingFree { Auto, On, Off };
PaddingFree parse_padding_free(const std::string& text, const std::string& flag);
const char* padding_free_name(PaddingFree p);

// A micro-batch of examples, padded or padding-free as `mode` and the lengths say.
Batch make_micro_batch(const std::vector<const Example*>& examples, const at::Device& device, PaddingFree mode);

}  // namespace hyft::data
