#include "data/dataset_cache.h"

#include "io/atomic_file.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace hyft::data {

namespace fs = std::filesystem;

namespace {

// Layout: magic, payload, FNV-1a of the payload (8 bytes): a damaged entry is
// detected before a single field of it is trusted.
constexpr char kMagic[8] = {'H', 'Y', 'F', 'T', 'D', 'S', '0', '3'};

// 64-bit FNV-1a: stable across runs and platforms (std::hash is not).
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::string file_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ":missing";
  std::error_code ec;
  return fs::absolute(path, ec).string() + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) +
         "." + std::to_string(st.st_mtim.tv_nsec);
}

class Writer {
 public:
  void i64(int64_t v) { buf_.append(reinterpret_cast<const char*>(&v), 8); }
  void f64(double v) { buf_.append(reinterpret_cast<const char*>(&v), 8); }
  void str(const std::string& s) {
    i64(int64_t(s.size()));
    buf_ += s;
  }
  void ids(const std::vector<int64_t>& v) {  // stored as int32: ids and kIgnoreIndex fit
    i64(int64_t(v.size()));
    const size_t at = buf_.size();
    buf_.resize(at + v.size() * 4);
    for (size_t i = 0; i < v.size(); ++i) {
      const int32_t x = int32_t(v[i]);
      std::memcpy(&buf_[at + 4 * i], &x, 4);
    }
  }
  std::string buf_;
};

class Reader {
 public:
  explicit Reader(std::string data) : data_(std::move(data)) {}
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == data_.size(); }
  int64_t i64() { int64_t v = 0; take(&v, 8); return v; }
  double f64() { double v = 0; take(&v, 8); return v; }
  std::string str() {
    const int64_t n = i64();
    if (!ok_ || n < 0 || size_t(n) > data_.size() - pos_) return fail_str();
    std::string s = data_.substr(pos_, size_t(n));
    pos_ += size_t(n);
    return s;
  }
  std::vector<int64_t> ids() {
    const int64_t n = i64();
    if (!ok_ || n < 0 || size_t(n) > (data_.size() - pos_) / 4) {
      ok_ = false;
      return {};
    }
    std::vector<int64_t> v(static_cast<size_t>(n));
    for (auto& x : v) {
      int32_t y;
      std::memcpy(&y, data_.data() + pos_, 4);
      pos_ += 4;
      x = y;
    }
    return v;
  }
  void take(void* out, size_t n) {
    if (!ok_ || n > data_.size() - pos_) {
      ok_ = false;
      return;
    }
    std::memcpy(out, data_.data() + pos_, n);
    pos_ += n;
  }

 private:
  std::string fail_str() {
    ok_ = false;
    return {};
  }
  std::string data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

std::string dataset_cache_path(const std::string& cache_dir, const std::string& data_path,
                               const tokenizer::Tokenizer* tok, int64_t vocab_size, const DatasetOptions& o) {
  std::ostringstream key;
  key << "v3|" << file_identity(data_path) << "|" << (tok ? file_identity(tok->path()) : "no-tokenizer") << "|"
      << vocab_size << "|" << o.tokens.max_seq_len << "|" << int(o.tokens.overlength) << "|"
      << o.tokens.train_on_prompt << "|" << o.records.chat_template << "|"
      << (o.records.model_template ? o.records.model_template->source : std::string()) << "|" << o.records.label_field << "|" << o.records.weight_field << "|"
      << o.jsonl.skip_bad_lines;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(key.str())));
  return (fs::path(cache_dir) / (fs::path(data_path).stem().string() + "-" + hex + ".hyftdata")).string();
}

std::optional<Dataset> read_dataset_cache(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string data = ss.str();
  if (data.size() < sizeof kMagic || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) return std::nullopt;
  uint64_t stored = 0;
  if (data.size() >= sizeof kMagic + 8)
    std::memcpy(&stored, data.data() + data.size() - 8, 8);
  std::string payload = data.size() >= sizeof kMagic + 8 ? data.substr(sizeof kMagic, data.size() - sizeof kMagic - 8)
                                                          : std::string();
  if (data.size() < sizeof kMagic + 8 || fnv1a(payload) != stored) {
    std::cerr << "warning: " << path << " is damaged (checksum); tokenizing the dataset again\n";
    return std::nullopt;
  }
  Reader r(std::move(payload));
  Dataset d;
  auto& s = d.stats;
  for (int64_t* f : {&s.records, &s.skipped_lines, &s.truncated, &s.dropped_overlength, &s.dropped_no_target,
                     &s.tokens, &s.target_tokens, &s.longest})
    *f = r.i64();
  const int64_t kinds = r.i64();
  for (int64_t k = 0; k < kinds && r.ok(); ++k) {
    std::string name = r.str();
    s.records_by_kind[name] = r.i64();
  }
  const int64_t n = r.i64();
  if (!r.ok() || n < 0) return std::nullopt;
  d.examples.reserve(size_t(n));
  for (int64_t i = 0; i < n && r.ok(); ++i) {
    Example e;
    e.input_ids = r.ids();
    e.labels = r.ids();
    e.weight = r.f64();
    e.line = r.i64();
    if (r.i64()) e.label = r.str();
    d.examples.push_back(std::move(e));
  }
  if (!r.ok() || !r.at_end()) {
    std::cerr << "warning: " << path << " is damaged; tokenizing the dataset again\n";
    return std::nullopt;
  }
  return d;
}

void write_dataset_cache(const std::string& path, const Dataset& d) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  Writer w;
  w.buf_.append(kMagic, sizeof kMagic);
  const auto& s = d.stats;
  for (int64_t f : {s.records, s.skipped_lines, s.truncated, s.dropped_overlength, s.dropped_no_target, s.tokens,
                    s.target_tokens, s.longest})
    w.i64(f);
  w.i64(int64_t(s.records_by_kind.size()));
  for (const auto& [name, count] : s.records_by_kind) {
    w.str(name);
    w.i64(count);
  }
  w.i64(int64_t(d.examples.size()));
  for (const auto& e : d.examples) {
    w.ids(e.input_ids);
    w.ids(e.labels);
    w.f64(e.weight);
    w.i64(e.line);
    w.i64(e.label ? 1 : 0);
    if (e.label) w.str(*e.label);
  }
  const uint64_t sum = fnv1a(w.buf_.substr(sizeof kMagic));
  w.buf_.append(reinterpret_cast<const char*>(&sum), 8);
  io::write_file_atomic(path, w.buf_);
}

}  // namespace hyft::data
