// --audit-log FILE.jsonl of `hyft serve`: one JSON line per request (id, time,
// settings, prompt, output, finish reason, status, filter verdict), appended
// whole by concurrent requests (one write a line, under a lock, flushed).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

namespace hyft::serve {

class AuditLog {
 public:
  explicit AuditLog(const std::string& path);  // "" : off; a file that cannot be opened is a UserError
  bool enabled() const { return file_ != nullptr; }
  void write(const nlohmann::json& entry);

 private:
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_{nullptr, &std::fclose};
  std::mutex mutex_;
};

}  // namespace hyft::serve
