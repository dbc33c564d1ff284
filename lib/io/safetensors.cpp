#include "io/safetensors.h"

#include "common/error.h"
#include "io/json_file.h"
#include "io/atomic_file.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

namespace hyft::io {

namespace {

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  uint64_t bytes;
};

// The safetensors dtypes that torch can hold. Others (F8_*, U16, U32, U64) are refused.
constexpr DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4},  {"F16", at::kHalf, 2},
    {"BF16", at::kBFloat16, 2}, {"I64", at::kLong, 8}, {"I32", at::kInt, 4},
    {"I16", at::kShort, 2},  {"I8", at::kChar, 1},    {"U8", at::kByte, 1},
    {"BOOL", at::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // as the reference implementation

}  // namespace

// ---------------------------------------------------------------------------
MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  HYFT_CHECK(fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(err));
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    int err = errno;
    ::close(fd);
    HYFT_CHECK(p != MAP_FAILED, path, ": cannot map: ", std::strerror(err));
    data_ = static_cast<uint8_t*>(p);
  } else {
    ::close(fd);
  }
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

std::string safetensors_dtype_name(at::ScalarType dtype) {
  for (const auto& d : kDtypes)
    if (d.type == dtype) return d.name;
  fail("safetensors cannot store dtype ", c10::toString(dtype));
}

// ---------------------------------------------------------------------------
SafetensorsFile::SafetensorsFile(const std::string& path)
    : map_(std::make_shared<MappedFile>(path)) {
  const uint64_t file_size = map_->size();
  HYFT_CHECK(file_size >= 8, path, ": not a safetensors file (", file_size,
             " bytes, shorter than the 8-byte header length)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | map_->data()[i];
  HYFT_CHECK(header_len <= file_size - 8, path, ": header length ", header_len,
             " runs past the end of the file (", file_size, " bytes); the file is "
             "truncated or not safetensors");
  HYFT_CHECK(header_len <= kMaxHeaderBytes, path, ": header length ", header_len,
             " exceeds the 100 MB limit");
  data_start_ = 8 + header_len;
  const uint64_t data_size = file_size - data_start_;

  const nlohmann::json header =
      parse_json_text(std::string(map_->data() + 8, map_->data() + 8 + header_len), path + ": header");
  HYFT_CHECK(header.is_object(), path, ": header is not a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      HYFT_CHECK(v.is_object(), path, ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        HYFT_CHECK(m.value().is_string(), path, ": __metadata__ value '", m.key(),
                   "' is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    HYFT_CHECK(v.is_object(), where, ": entry is not an object");
    HYFT_CHECK(v.contains("dtype") && v["dtype"].is_string(), where, ": missing string 'dtype'");
    HYFT_CHECK(v.contains("shape") && v["shape"].is_array(), where, ": missing array 'shape'");
    HYFT_CHECK(v.contains("data_offsets") && v["data_offsets"].is_array() &&
                   v["data_offsets"].size() == 2,
               where, ": 'data_offsets' must be [begin, end]");
    TensorEntry e;
    e.dtype = v["dtype"].get<std::string>();
    const DtypeInfo* d = find_dtype(e.dtype);
    HYFT_CHECK(d, where, ": unknown or unsupported dtype '", e.dtype,
               "' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    uint64_t numel = 1;
    for (const auto& s : v["shape"]) {
      HYFT_CHECK(s.is_number_unsigned(), where, ": shape entries must be non-negative integers");
      const uint64_t dim = s.get<uint64_t>();
      HYFT_CHECK(dim == 0 || numel <= std::numeric_limits<uint64_t>::max() / 16 / dim, where,
                 ": shape is too large");
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const auto& o : v["data_offsets"])
      HYFT_CHECK(o.is_number_unsigned(), where, ": data_offsets must be non-negative integers");
    e.begin = v["data_offsets"][0].get<uint64_t>();
    e.end = v["data_offsets"][1].get<uint64_t>();
    HYFT_CHECK(e.begin <= e.end, where, ": data_offsets [", e.begin, ", ", e.end,
               "] are reversed");
    HYFT_CHECK(e.end <= data_size, where, ": data_offsets end ", e.end,
               " is past the end of the data (", data_size, " bytes); the file is truncated");
    HYFT_CHECK(e.end - e.begin == numel * d->bytes, where, ": holds ", e.end - e.begin,
               " bytes but shape and dtype ", e.dtype, " need ", numel * d->bytes);
    entries_.emplace(name, std::move(e));
  }

  // No two tensors may share bytes.
  std::vector<std::pair<const std::string*, const TensorEntry*>> by_offset;
  for (const auto& [k, e] : entries_) by_offset.emplace_back(&k, &e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto& a, const auto& b) { return a.second->begin < b.second->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto& prev = by_offset[i - 1];
    const auto& cur = by_offset[i];
    HYFT_CHECK(cur.second->begin >= prev.second->end || cur.second->begin == cur.second->end ||
                   prev.second->begin == prev.second->end,
               path, ": tensors '", *prev.first, "' and '", *cur.first, "' overlap");
  }
}

std::vector<std::string> SafetensorsFile::keys() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& kv : entries_) out.push_back(kv.first);
  return out;
}

const TensorEntry& SafetensorsFile::entry(const std::string& key) const {
  auto it = entries_.find(key);
  HYFT_CHECK(it != entries_.end(), path(), ": no tensor named '", key, "'");
  return it->second;
}

at::Tensor SafetensorsFile::tensor(const std::string& key) const {
  const TensorEntry& e = entry(key);
  const DtypeInfo* d = find_dtype(e.dtype);
  uint8_t* ptr = const_cast<uint8_t*>(map_->data()) + data_start_ + e.begin;
  auto options = at::TensorOptions().dtype(d->type).device(at::kCPU);
  if (e.end == e.begin) return at::empty(e.shape, options);
  if (reinterpret_cast<uintptr_t>(ptr) % d->bytes != 0) {
    at::Tensor out = at::empty(e.shape, options);
    std::memcpy(out.data_ptr(), ptr, e.end - e.begin);
    return out;
  }
  auto keep_alive = map_;
  return at::from_blob(ptr, e.shape, [keep_alive](void*) {}, options);
}

// ---------------------------------------------------------------------------
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, at::Tensor>> sorted;
  sorted.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    HYFT_CHECK(name != "__metadata__", "a tensor cannot be named __metadata__");
    sorted.emplace_back(name, t.detach().to(at::kCPU).contiguous());
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < sorted.size(); ++i)
    HYFT_CHECK(sorted[i].first != sorted[i - 1].first, "duplicate tensor name '",
               sorted[i].first, "' while writing ", path);

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : sorted) {
    const uint64_t bytes = t.numel() * t.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned

  AtomicFile file(path);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(uint64_t(text.size()) >> (8 * i));
  file.write(len, 8);
  file.write(text.data(), text.size());
  for (const auto& [name, t] : sorted) file.write(t.data_ptr(), t.numel() * t.element_size());
  file.commit();
}

}  // namespace hyft::io
