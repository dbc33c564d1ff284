#include "io/checkpoint_files.h"

#include "common/error.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>

namespace hyft::io {

namespace fs = std::filesystem;

CheckpointFiles::CheckpointFiles(const std::string& folder) {
  const fs::path dir(folder);
  const fs::path single = dir / "model.safetensors";
  const fs::path index = dir / "model.safetensors.index.json";
  std::vector<std::string> paths;
  if (fs::exists(index)) {
    const nlohmann::json j = read_json_file(index.string(), "the index of a sharded model");
    HYFT_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
               index.string(), ": missing object 'weight_map'");
    std::set<std::string> shard_names;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      HYFT_CHECK(it.value().is_string(), index.string(), ": weight_map['", it.key(),
                 "'] is not a file name");
      shard_names.insert(it.value().get<std::string>());
    }
    for (const auto& name : shard_names) {
      HYFT_CHECK(name.find('/') == std::string::npos && name.find("..") == std::string::npos,
                 index.string(), ": shard name '", name, "' must be a file in the folder");
      HYFT_CHECK(fs::exists(dir / name), index.string(), ": lists shard '", name,
                 "', which is missing from ", folder);
      paths.push_back((dir / name).string());
    }
    // Every key must sit where the index says.
    for (const auto& path : paths) files_.push_back(std::make_unique<SafetensorsFile>(path));
    for (const auto& f : files_)
      for (const auto& key : f->keys()) {
        HYFT_CHECK(!where_.count(key), "tensor '", key, "' is stored twice (", where_[key]->path(),
                   " and ", f->path(), ")");
        where_[key] = f.get();
      }
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it)
      HYFT_CHECK(where_.count(it.key()) &&
                     fs::path(where_[it.key()]->path()).filename() == it.value().get<std::string>(),
                 index.string(), ": tensor '", it.key(), "' is not in shard ", it.value().dump());
    return;
  }
  if (!fs::exists(single)) {
    const bool has_bin = fs::exists(dir / "pytorch_model.bin") ||
                         fs::exists(dir / "pytorch_model.bin.index.json");
    fail(folder, ": no model.safetensors or model.safetensors.index.json",
         has_bin ? "; only pytorch_model.bin is there: convert it to safetensors "
                   "(transformers: model.save_pretrained(dir, safe_serialization=True))"
                 : "; is this a Hugging Face model folder?");
  }
  files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
  for (const auto& key : files_.back()->keys()) where_[key] = files_.back().get();
}

std::vector<std::string> CheckpointFiles::keys() const {
  std::vector<std::string> out;
  for (const auto& kv : where_) out.push_back(kv.first);
  return out;
}

const SafetensorsFile& CheckpointFiles::file(const std::string& key) const {
  auto it = where_.find(key);
  HYFT_CHECK(it != where_.end(), "no tensor named '", key, "' in the model's weights");
  return *it->second;
}

const std::string& CheckpointFiles::file_of(const std::string& key) const {
  return file(key).path();
}

const TensorEntry& CheckpointFiles::entry(const std::string& key) const {
  return file(key).entry(key);
}

at::Tensor CheckpointFiles::tensor(const std::string& key) const { return file(key).tensor(key); }

}  // namespace hyft::io
