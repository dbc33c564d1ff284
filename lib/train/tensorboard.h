// TensorBoard event files: scalars written as TFRecord-framed Event
// protos (length, masked CRC-32C, payload, masked CRC-32C), which TensorBoard
// reads as it reads its own. No protobuf dependency: the few fields are encoded
// by hand.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace hyft::train {

class EventWriter {
 public:
  // Creates dir/events.out.tfevents.<time>.<host>.
  explicit EventWriter(const std::string& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  void scalar(const std::string& tag, double value, int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& payload);
  std::string path_;
  std::FILE* file_ = nullptr;
};

// CRC-32C (Castagnoli) and TFRecord's masking of it.
uint32_t crc32c(const void* data, size_t n);
uint32_t masked_crc32c(const void* data, size_t n);

}  // namespace hyft::train
