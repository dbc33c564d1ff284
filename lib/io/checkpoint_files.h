// The weights of a Hugging Face model folder: model.safetensors, or the shards
// listed by model.safetensors.index.json. Gives every tensor by name, memory-mapped.
#pragma once

#include "io/safetensors.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace hyft::io {

class CheckpointFiles {
 public:
  // Opens the weights of `folder`; a folder without safetensors weights, a broken
  // index, or a name stored twice is a UserError.
  explicit CheckpointFiles(const std::string& folder);

  std::vector<std::string> keys() const;  // sorted
  bool contains(const std::string& key) const { return where_.count(key) != 0; }
  const TensorEntry& entry(const std::string& key) const;
  at::Tensor tensor(const std::string& key) const;  // CPU, stored dtype
  // The file that holds `key`, for error messages.
  const std::string& file_of(const std::string& key) const;

 private:
  const SafetensorsFile& file(const std::string& key) const;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;
};

}  // namespace hyft::io
