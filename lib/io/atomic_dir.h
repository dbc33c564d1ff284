// Folders are never left half-written either: AtomicDir fills a temporary folder
// beside the target and renames it into place on commit(). An existing non-empty
// target is refused unless `replace` is set; then it is swapped out and removed
// only after the new folder is in place.
#pragma once

#include <string>

namespace hyft::io {

class AtomicDir {
 public:
  // `how_to_replace` completes the refusal message ("pass --force to replace it").
  AtomicDir(std::string path, bool replace, const std::string& how_to_replace = "");
  ~AtomicDir();
  AtomicDir(const AtomicDir&) = delete;
  AtomicDir& operator=(const AtomicDir&) = delete;

  const std::string& tmp() const { return tmp_; }  // write here
  std::string file(const std::string& name) const { return tmp_ + "/" + name; }
  void commit();

 private:
  std::string path_, tmp_;
  bool committed_ = false;
};

// True when `path` does not exist or is an empty folder.
bool is_missing_or_empty_dir(const std::string& path);

}  // namespace hyft::io
