// safetensors files: a memory-mapped, validated reader and an atomic writer.
// Layout: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the data. Every offset is checked before any byte of data is touched.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hyft::io {

// A read-only (copy-on-write) memory map of a whole file, unmapped on destruction.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

struct TensorEntry {
  std::string dtype;           // "F32", "BF16", ...
  std::vector<int64_t> shape;  // may be empty (a scalar)
  uint64_t begin = 0;          // byte offsets into the data section
  uint64_t end = 0;
};

// Name of a safetensors dtype for a torch dtype ("F32" for kFloat, ...).
std::string safetensors_dtype_name(at::ScalarType dtype);

class SafetensorsFile {
 public:
  // Maps and validates `path`; a malformed file throws hyft::UserError naming it.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return map_->path(); }
  std::vector<std::string> keys() const;  // sorted
  bool contains(const std::string& key) const { return entries_.count(key) != 0; }
  const TensorEntry& entry(const std::string& key) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor on CPU in its stored dtype. It shares the file's memory (the map
  // stays alive while the tensor does) unless the data is misaligned for its dtype,
  // in which case it is a copy. Writing into it never changes the file.
  at::Tensor tensor(const std::string& key) const;

 private:
  std::shared_ptr<MappedFile> map_;
  uint64_t data_start_ = 0;
  std::map<std::string, TensorEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (any device, any layout; stored contiguous from CPU) to `path`
// through a temporary file renamed into place. Names must be unique.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace hyft::io
