// Line-by-line reading of JSONL files with errors that say FILE:LINE: reason.
// Each line must be one UTF-8 JSON object; blank lines are skipped.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace hyft::data {

struct JsonlLine {
  const std::string& file;
  int64_t line;  // 1-based
  const nlohmann::json& value;
  // Throws the UserError "FILE:LINE: reason".
  [[noreturn]] void fail(const std::string& reason) const;
};

struct JsonlOptions {
  bool skip_bad_lines = false;  // report and skip lines whose handler fails
};

struct JsonlStats {
  int64_t lines = 0;    // non-blank lines read
  int64_t skipped = 0;  // bad lines skipped
};

// Parses one line of `file` (1-based `line`) into a JSON object, or throws the
// UserError "FILE:LINE: reason" (not JSON, invalid UTF-8, not an object).
nlohmann::json parse_json_line(const std::string& text, const std::string& file, int64_t line);

// True for lines with nothing but whitespace (skipped everywhere).
bool is_blank_line(const std::string& text);

// Calls `handle` for every JSON object of `path`. Lines that are not JSON objects,
// and lines whose handler throws a UserError, fail the read, or with
// skip_bad_lines are counted and skipped (the first few are reported on stderr).
JsonlStats read_jsonl(const std::string& path, const std::function<void(const JsonlLine&)>& handle,
                      const JsonlOptions& options = {});

}  // namespace hyft::data
