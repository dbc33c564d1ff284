#include "io/atomic_dir.h"

#include "common/error.h"
#include "io/remove_tree.h"

#include <c10/util/Exception.h>

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_EXCHANGE
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace hyft::io {

namespace fs = std::filesystem;

bool is_missing_or_empty_dir(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return true;
  return fs::is_directory(path, ec) && fs::directory_iterator(path, ec) == fs::directory_iterator();
}

AtomicDir::AtomicDir(std::string path, bool replace, const std::string& how_to_replace)
    : path_(std::move(path)) {
  while (path_.size() > 1 && path_.back() == '/') path_.pop_back();
  std::error_code ec;
  if (fs::exists(path_, ec)) {
    HYFT_CHECK(fs::is_directory(path_, ec), path_, ": exists and is not a folder");
    HYFT_CHECK(replace || is_missing_or_empty_dir(path_), path_, ": folder exists and is not empty",
               how_to_replace.empty() ? "" : "; ", how_to_replace);
  }
  const fs::path parent = fs::path(path_).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  tmp_ = path_ + ".tmp-" + std::to_string(::getpid());
  remove_tree(tmp_);
  HYFT_CHECK(fs::create_directory(tmp_, ec), tmp_, ": cannot create (", ec.message(), ")");
}

AtomicDir::~AtomicDir() {
  if (!committed_) {
    try {
      remove_tree(tmp_);
    } catch (...) {
    }
  }
}

void AtomicDir::commit() {
  TORCH_INTERNAL_ASSERT(!committed_, "AtomicDir committed twice");
  std::error_code ec;
  std::string old;
  // Replacing: swap the two folders in one step (Linux renameat2 RENAME_EXCHANGE),
  // so a kill at any moment leaves either the old folder or the new one in place;
  // the temporary name then holds the old one, removed like any leftover.
  if (fs::exists(path_, ec) && ::renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, path_.c_str(), RENAME_EXCHANGE) == 0) {
    committed_ = true;
    try {
      remove_tree(tmp_);  // the old folder; a leftover is removed at the next run's start
    } catch (const UserError&) {
    }
    return;
  }
  // Filesystems without the exchange: move the old folder aside, then rename.
  if (fs::exists(path_, ec)) {
    old = path_ + ".old-" + std::to_string(::getpid());
    remove_tree(old);
    HYFT_CHECK(std::rename(path_.c_str(), old.c_str()) == 0, path_, ": cannot move aside (",
               std::strerror(errno), ")");
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    if (!old.empty()) std::rename(old.c_str(), path_.c_str());
    fail(path_, ": cannot move the finished folder into place (", std::strerror(err), ")");
  }
  committed_ = true;
  if (!old.empty()) remove_tree(old);
}

}  // namespace hyft::io
