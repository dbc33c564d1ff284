#include "io/hf_cache.h"

#include "common/error.h"
#include "common/strings.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace hyft::io {

namespace fs = std::filesystem;

namespace {

fs::path hub_cache() {
  if (const char* v = std::getenv("HF_HUB_CACHE"); v && *v) return v;
  if (const char* v = std::getenv("HF_HOME"); v && *v) return fs::path(v) / "hub";
  if (const char* v = std::getenv("XDG_CACHE_HOME"); v && *v) return fs::path(v) / "huggingface" / "hub";
  const char* home = std::getenv("HOME");
  return fs::path(home ? home : ".") / ".cache" / "huggingface" / "hub";
}

bool is_repo_id(const std::string& name) {
  const auto slash = name.find('/');
  return slash != std::string::npos && slash > 0 && slash + 1 < name.size() &&
         name.find('/', slash + 1) == std::string::npos && name[0] != '.' && name.find("..") == std::string::npos;
}

}  // namespace

std::string resolve_model_dir(const std::string& name, const std::string& flag) {
  std::error_code ec;
  if (name.empty() || fs::is_directory(name, ec)) return name;
  HYFT_CHECK(is_repo_id(name), flag, " ", name, ": no such folder; give a Hugging Face model folder "
             "(config.json + safetensors) or a model id such as org/name that is in the local cache");
  const fs::path repo = hub_cache() / ("models--" + name.substr(0, name.find('/')) + "--" + name.substr(name.find('/') + 1));
  const fs::path snapshots = repo / "snapshots";
  if (fs::is_directory(snapshots, ec)) {
    std::ifstream ref(repo / "refs" / "main");
    std::string revision;
    if (ref && std::getline(ref, revision) && fs::is_directory(snapshots / trim(revision), ec))
      return (snapshots / trim(revision)).string();
    fs::path newest;
    fs::file_time_type newest_time{};
    for (const auto& entry : fs::directory_iterator(snapshots, ec))
      if (entry.is_directory() && (newest.empty() || entry.last_write_time() > newest_time))
        newest = entry.path(), newest_time = entry.last_write_time();
    if (!newest.empty()) return newest.string();
  }
  fail(flag, " ", name, ": not a folder, and not in the Hugging Face cache (looked in ", repo.string(),
       "); hyft does not download models: fetch it first (huggingface-cli download ", name,
       ", or snapshot_download in Python), set HF_HOME or HF_HUB_CACHE to the cache that has it, or pass the "
       "model's folder");
}

}  // namespace hyft::io
