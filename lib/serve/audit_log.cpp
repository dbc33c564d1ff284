#include "serve/audit_log.h"

#include "common/error.h"

namespace hyft::serve {

AuditLog::AuditLog(const std::string& path) {
  if (path.empty()) return;
  file_.reset(std::fopen(path.c_str(), "a"));
  HYFT_CHECK(file_, "--audit-log ", path, ": cannot open it for appending; check the folder exists and is writable");
}

void AuditLog::write(const nlohmann::json& entry) {
  if (!file_) return;
  const std::string line = entry.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard<std::mutex> lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), file_.get());
  std::fflush(file_.get());
}

}  // namespace hyft::serve
