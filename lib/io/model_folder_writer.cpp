#include "io/model_folder_writer.h"

#include "io/atomic_dir.h"
#include "io/atomic_file.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace hyft::io {

namespace fs = std::filesystem;

namespace {

// Files of a model folder that travel with its weights (never adapter files).
const char* const kCompanionFiles[] = {"tokenizer.model",         "tokenizer.json",    "tokenizer_config.json",
                                       "special_tokens_map.json", "added_tokens.json", "generation_config.json"};

const char* config_dtype_name(at::ScalarType t) {
  return t == at::kBFloat16 ? "bfloat16" : t == at::kHalf ? "float16" : "float32";
}

}  // namespace

size_t write_model_folder(const std::string& out_dir, const std::vector<TensorSpec>& specs,
                          const ModelFolderOptions& options,
                          const std::function<at::Tensor(const std::string&)>& produce) {
  AtomicDir out(out_dir, options.replace, options.how_to_replace);
  const size_t shards = write_sharded_safetensors(out.tmp(), specs, options.shard_bytes, produce);
  nlohmann::ordered_json config =
      !options.config.is_null()
          ? options.config
          : read_ordered_json_file((fs::path(options.source_dir) / "config.json").string(), "the model config");
  config["torch_dtype"] = config_dtype_name(options.dtype);
  if (config.contains("dtype")) config["dtype"] = config_dtype_name(options.dtype);
  write_file_atomic(out.file("config.json"), config.dump(2) + "\n");
  for (const char* name : kCompanionFiles) {
    if (options.source_dir.empty()) break;
    const fs::path src = fs::path(options.source_dir) / name;
    if (fs::exists(src) && !options.files.count(name)) fs::copy_file(src, out.file(name));
  }
  for (const auto& [name, content] : options.files) write_file_atomic(out.file(name), content);
  out.commit();
  return shards;
}

}  // namespace hyft::io
