#include "io/sharded_writer.h"

#include "common/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdio>

namespace hyft::io {

size_t write_sharded_safetensors(const std::string& folder, const std::vector<TensorSpec>& specs,
                               int64_t shard_bytes,
                               const std::function<at::Tensor(const std::string&)>& produce) {
  // Greedy plan, as transformers shards: a tensor opens a new shard when it would
  // push a non-empty shard past the limit.
  std::vector<std::vector<const TensorSpec*>> shards(1);
  int64_t current = 0, total = 0;
  for (const auto& s : specs) {
    if (current > 0 && current + s.bytes > shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(&s);
    current += s.bytes;
    total += s.bytes;
  }
  const size_t n = shards.size();
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  for (size_t i = 0; i < n; ++i) {
    std::string file = "model.safetensors";
    if (n > 1) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
      file = buf;
    }
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const TensorSpec* s : shards[i]) {
      tensors.emplace_back(s->name, produce(s->name));
      weight_map[s->name] = file;
    }
    save_safetensors(folder + "/" + file, tensors, {{"format", "pt"}});
  }
  if (n > 1) {
    nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_file_atomic(folder + "/model.safetensors.index.json", index.dump(2) + "\n");
  }
  return n;
}

int64_t parse_byte_size(const std::string& text, const std::string& flag) {
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    fail(flag, ": '", text, "' is not a size; use e.g. 5GB, 500MB, 2GiB");
  }
  std::string unit = text.substr(pos);
  for (auto& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  double mult = 0;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KB") mult = 1e3;
  else if (unit == "MB") mult = 1e6;
  else if (unit == "GB") mult = 1e9;
  else if (unit == "KIB") mult = 1024.0;
  else if (unit == "MIB") mult = 1024.0 * 1024;
  else if (unit == "GIB") mult = 1024.0 * 1024 * 1024;
  HYFT_CHECK(mult > 0 && value > 0, flag, ": '", text, "' is not a size; use e.g. 5GB, 500MB, 2GiB");
  return static_cast<int64_t>(value * mult);
}

}  // namespace hyft::io
