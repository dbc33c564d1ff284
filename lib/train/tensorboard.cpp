#include "train/tensorboard.h"

#include "common/error.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace hyft::train {

namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82f63b78u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// Protocol-buffer wire format, just what Event/Summary/Value need.
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(v | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}
void tag(std::string& out, int field, int wire_type) { varint(out, uint64_t(field) << 3 | uint64_t(wire_type)); }
template <typename T>
void fixed(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts (x86-64, aarch64)
  out.append(b, sizeof(T));
}
void bytes_field(std::string& out, int field, const std::string& bytes) {
  tag(out, field, 2);
  varint(out, bytes.size());
  out += bytes;
}

double wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string event(int64_t step, const std::string& body_field) {
  std::string e;
  tag(e, 1, 1);  // wall_time: double
  fixed(e, wall_time());
  tag(e, 2, 0);  // step: int64
  varint(e, uint64_t(step));
  e += body_field;
  return e;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const auto& t = crc_table();
  uint32_t c = 0xffffffffu;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) c = t[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

EventWriter::EventWriter(const std::string& dir) {
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  path_ = dir + "/events.out.tfevents." + std::to_string(int64_t(wall_time())) + "." + host;
  file_ = std::fopen(path_.c_str(), "ab");
  HYFT_CHECK(file_, path_, ": cannot write (", std::strerror(errno), ")");
  std::string version;
  bytes_field(version, 3, "brain.Event:2");  // file_version
  write_record(event(0, version));
  flush();
}

EventWriter::~EventWriter() {
  if (file_) std::fclose(file_);
}

void EventWriter::scalar(const std::string& name, double value, int64_t step) {
  std::string v;
  bytes_field(v, 1, name);  // Value.tag
  tag(v, 2, 5);             // Value.simple_value: float
  fixed(v, float(value));
  std::string summary;
  bytes_field(summary, 1, v);  // Summary.value
  std::string body;
  bytes_field(body, 5, summary);  // Event.summary
  write_record(event(step, body));
}

void EventWriter::write_record(const std::string& payload) {
  std::string rec;
  fixed(rec, uint64_t(payload.size()));
  fixed(rec, masked_crc32c(rec.data(), 8));
  rec += payload;
  fixed(rec, masked_crc32c(payload.data(), payload.size()));
  HYFT_CHECK(std::fwrite(rec.data(), 1, rec.size(), file_) == rec.size(), path_, ": write failed");
}

void EventWriter::flush() { std::fflush(file_); }

}  // namespace hyft::train
