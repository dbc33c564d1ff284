// Training checkpoints: output/checkpoints/step-N/ holds the trainable
// weights, optimizer and loss-scaler state, RNG states, sampler position and the
// trainer state as JSON (written last: a folder without it is incomplete). Each is
// written to a temporary folder and renamed into place; only the newest
// `keep_last` are kept.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hyft::train {

struct CheckpointData {
  int64_t step = 0;
  std::vector<std::pair<std::string, at::Tensor>> trainable;  // name -> float32 weights
  std::vector<std::pair<std::string, at::Tensor>> optimizer;
  std::vector<std::pair<std::string, at::Tensor>> rng;         // generator states (uint8)
  nlohmann::json state;                                        // sampler, scaler, counters
  nlohmann::json config;                                       // the resolved run configuration
};

// Writes checkpoints/step-N via `write_extra(folder)` for anything else (the adapter).
std::string save_checkpoint(const std::string& output_dir, const CheckpointData& data,
                            const std::function<void(const std::string&)>& write_extra, int64_t keep_last);

// The newest complete checkpoint under output_dir/checkpoints, skipping (with a
// warning) half-written ones; nullopt when there is none.
std::optional<std::string> latest_checkpoint(const std::string& output_dir);

// Reads a checkpoint folder; a missing part is a UserError naming it.
struct LoadedCheckpoint {
  int64_t step = 0;
  std::map<std::string, at::Tensor> trainable, optimizer, rng;
  nlohmann::json state;
  nlohmann::json config;  // the run configuration it was saved with (null when absent)
};
LoadedCheckpoint load_checkpoint(const std::string& dir);

}  // namespace hyft::train
