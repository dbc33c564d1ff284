// Writes a set of named tensors as Hugging Face does: one model.safetensors, or
// model-0000i-of-0000n.safetensors shards of at most `shard_bytes` each with a
// model.safetensors.index.json. Tensors are produced one shard at a time, so a
// large model is never held whole in memory.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hyft::io {

struct TensorSpec {
  std::string name;
  int64_t bytes = 0;  // size as it will be written
};

// `produce(name)` returns the tensor to store under `name`.
// Returns the number of files written (1 = unsharded).
size_t write_sharded_safetensors(const std::string& folder, const std::vector<TensorSpec>& specs,
                               int64_t shard_bytes,
                               const std::function<at::Tensor(const std::string&)>& produce);

// "5GB" (10^9), "500MB", "2GiB" (2^30), "20KB", or plain bytes -> bytes; `flag` in errors.
int64_t parse_byte_size(const std::string& text, const std::string& flag);

}  // namespace hyft::io
