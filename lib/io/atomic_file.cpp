#include "io/atomic_file.h"

#include "common/error.h"

#include <c10/util/Exception.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace hyft::io {

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), tmp_path_(path_ + ".tmp-" + std::to_string(::getpid())) {
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  HYFT_CHECK(file_, path_, ": cannot write (", std::strerror(errno),
             "); check that the folder exists and is writable");
}

AtomicFile::~AtomicFile() {
  if (file_) {
    std::fclose(file_);
    std::remove(tmp_path_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t bytes) {
  TORCH_INTERNAL_ASSERT(file_, "AtomicFile written after commit");
  if (bytes == 0) return;
  HYFT_CHECK(std::fwrite(data, 1, bytes, file_) == bytes, path_, ": write failed (",
             std::strerror(errno), "); is the disk full?");
}

void AtomicFile::commit() {
  TORCH_INTERNAL_ASSERT(file_, "AtomicFile committed twice");
  bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  ok = (std::fclose(file_) == 0) && ok;
  file_ = nullptr;
  if (!ok || std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    std::remove(tmp_path_.c_str());
    fail(path_, ": cannot finish writing (", std::strerror(err), ")");
  }
}

void check_output_file(const std::string& path, bool force, const std::string& flag) {
  namespace fs = std::filesystem;
  std::error_code ec;
  HYFT_CHECK(!fs::is_directory(path, ec), flag, " ", path, ": is a folder; give a file name");
  const fs::path parent = fs::path(path).parent_path();
  HYFT_CHECK(parent.empty() || fs::is_directory(parent, ec), flag, " ", path, ": the folder ", parent.string(),
             " does not exist");
  HYFT_CHECK(force || !fs::exists(path, ec), flag, " ", path, ": exists; pass --force to replace it");
}

void write_file_atomic(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text);
  f.commit();
}

}  // namespace hyft::io
