// Outputs are never left half-written: AtomicFile writes to a temporary file beside
// the target and renames it into place on commit(); without commit() (an error, an
// exception) the temporary is removed and the target is untouched.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace hyft::io {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void write(const std::string& text) { write(text.data(), text.size()); }
  void commit();  // flush, fsync, rename over the target

 private:
  std::string path_, tmp_path_;
  std::FILE* file_ = nullptr;
};

// Writes a whole text file atomically.
// The one overwrite rule for every command that writes a file: a path that
// exists is a UserError naming `flag` unless `force`; a folder or a missing
// parent folder is one too. Checked before the long work.
void check_output_file(const std::string& path, bool force, const std::string& flag);

void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace hyft::io
