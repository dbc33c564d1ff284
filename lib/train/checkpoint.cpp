#include "train/checkpoint.h"

#include "common/error.h"
#include "io/json_file.h"
#include "io/atomic_dir.h"
#include "io/atomic_file.h"
#include "io/remove_tree.h"
#include "io/safetensors.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace hyft::train {

namespace fs = std::filesystem;

namespace {

const char* const kParts[] = {"trainable.safetensors", "optimizer.safetensors", "rng.safetensors",
                              "trainer_state.json"};

// step-N folders by N, newest first.
std::vector<std::pair<int64_t, fs::path>> step_folders(const fs::path& root) {
  std::vector<std::pair<int64_t, fs::path>> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("step-", 0) != 0) continue;
    const std::string digits = name.substr(5);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) {
      std::cerr << "warning: " << e.path().string() << " is a half-written checkpoint (interrupted); skipping it\n";
      continue;
    }
    out.emplace_back(std::stoll(digits), e.path());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

bool complete(const fs::path& dir) {
  for (const char* part : kParts)
    if (!fs::exists(dir / part)) return false;
  return true;
}

std::map<std::string, at::Tensor> read_all(const std::string& path) {
  io::SafetensorsFile f(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& k : f.keys()) out[k] = f.tensor(k).clone();
  return out;
}

}  // namespace

std::string save_checkpoint(const std::string& output_dir, const CheckpointData& data,
                            const std::function<void(const std::string&)>& write_extra, int64_t keep_last) {
  const fs::path root = fs::path(output_dir) / "checkpoints";
  fs::create_directories(root);
  const std::string final_dir = (root / ("step-" + std::to_string(data.step))).string();
  {
    io::AtomicDir dir(final_dir, /*replace=*/true);
    io::save_safetensors(dir.file("trainable.safetensors"), data.trainable);
    io::save_safetensors(dir.file("optimizer.safetensors"), data.optimizer);
    io::save_safetensors(dir.file("rng.safetensors"), data.rng);
    if (write_extra) write_extra(dir.tmp());
    io::write_file_atomic(dir.file("config.json"), data.config.dump(2) + "\n");
    nlohmann::json state = data.state;
    state["step"] = data.step;
    io::write_file_atomic(dir.file("trainer_state.json"), state.dump(2) + "\n");  // last: marks completeness
    dir.commit();
  }
  if (keep_last > 0) {
    const auto folders = step_folders(root);
    for (size_t i = size_t(keep_last); i < folders.size(); ++i) io::remove_tree(folders[i].second.string());
  }
  return final_dir;
}

std::optional<std::string> latest_checkpoint(const std::string& output_dir) {
  const fs::path root = fs::path(output_dir) / "checkpoints";
  for (const auto& [step, dir] : step_folders(root)) {
    if (complete(dir)) return dir.string();
    std::cerr << "warning: checkpoint " << dir.string()
              << " is incomplete (no trainer_state.json or a missing part); using an earlier one\n";
  }
  return std::nullopt;
}

LoadedCheckpoint load_checkpoint(const std::string& dir) {
  HYFT_CHECK(fs::is_directory(dir), dir, ": no such checkpoint folder");
  for (const char* part : kParts)
    HYFT_CHECK(fs::exists(fs::path(dir) / part), dir, ": incomplete checkpoint (no ", part, ")");
  LoadedCheckpoint c;
  c.trainable = read_all(dir + "/trainable.safetensors");
  for (const auto& [name, t] : c.trainable)
    HYFT_CHECK(at::isfinite(t).all().item<bool>(), dir, "/trainable.safetensors: '", name,
               "' holds NaN or infinite values; resume from an earlier checkpoint (--resume PATH)");
  c.optimizer = read_all(dir + "/optimizer.safetensors");
  c.rng = read_all(dir + "/rng.safetensors");
  const std::string state_path = dir + "/trainer_state.json";
  c.state = io::read_json_file(state_path, "the trainer state of a checkpoint");
  HYFT_CHECK(c.state.is_object() && c.state.contains("step") && c.state["step"].is_number_integer(), state_path,
             ": has no integer 'step'; the checkpoint is damaged");
  c.step = c.state["step"].get<int64_t>();
  if (fs::exists(fs::path(dir) / "config.json"))
    c.config = io::read_json_file(dir + "/config.json", "the run configuration of a checkpoint");
  return c;
}

}  // namespace hyft::train
