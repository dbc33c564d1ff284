// Writing a Hugging Face model folder: safetensors (sharded with an index above
// the shard size), config.json copied from a source folder with torch_dtype set,
// and the source's tokenizer files; all into a temporary folder renamed into
// place. `hyft export` and full fine-tuning both write through it.
#pragma once

#include "io/sharded_writer.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace hyft::io {

struct ModelFolderOptions {
  std::string source_dir;  // config.json and tokenizer files come from here
  nlohmann::ordered_json config;  // used instead of source_dir's config.json when not null
  at::ScalarType dtype = at::kFloat;
  int64_t shard_bytes = 5'000'000'000;
  bool replace = false;    // replace a non-empty output folder
  std::string how_to_replace = "pass --force to replace it";
  // Files written beside the weights (name -> content), after the source's
  // companion files, so they replace a copied file of the same name.
  std::map<std::string, std::string> files;
};

// `produce(name)` gives each tensor of `specs`, already in options.dtype.
// Returns the number of safetensors files written.
size_t write_model_folder(const std::string& out_dir, const std::vector<TensorSpec>& specs,
                          const ModelFolderOptions& options,
                          const std::function<at::Tensor(const std::string&)>& produce);

}  // namespace hyft::io
