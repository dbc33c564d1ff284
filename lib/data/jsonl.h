// The one JSONL reader of hyft: files read line by line, each line one UTF-8 JSON
// object, blank lines skipped, errors that say FILE:LINE: reason, and the
// --skip-bad-lines policy (BadLines) shared by every command that reads records.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

namespace hyft::data {

struct JsonlLine {
  const std::string& file;
  int64_t line;  // 1-based
  const nlohmann::json& value;
  // Throws the UserError "FILE:LINE: reason".
  [[noreturn]] void fail(const std::string& reason) const;
};

struct JsonlOptions {
  bool skip_bad_lines = false;  // report and skip bad lines instead of failing
};

struct JsonlStats {
  int64_t lines = 0;    // non-blank lines read
  int64_t skipped = 0;  // bad lines skipped
};

// What one line of text holds, as a value: nothing (blank), a JSON object, or the
// reason it is bad ("FILE:LINE: invalid UTF-8", "... not valid JSON", ...).
struct ParsedLine {
  enum class Status { Blank, Object, Bad };
  Status status = Status::Blank;
  nlohmann::json value;
  std::string error;
};
// One record's line is at most this long (a training row holds a few thousand tokens;
// longer text is truncated to --max-seq-len anyway).
constexpr size_t kMaxLineBytes = size_t(64) << 20;
ParsedLine parse_jsonl_line(const std::string& text, const std::string& file, int64_t line);

// Every line of `path`, line breaks (and a trailing \r) removed; a file that
// cannot be opened is a UserError.
std::vector<std::string> read_lines(const std::string& path);

// The bad-line policy of one file: without skipping, the first bad line is a
// UserError; with it, bad lines are counted and the first few reported on stderr.
class BadLines {
 public:
  BadLines(std::string path, bool skip) : path_(std::move(path)), skip_(skip) {}
  void add(const std::string& error);  // throws unless skipping
  // After the file: a summary beyond the reported few, and a UserError when no
  // good line was left (`good`: lines kept).
  void finish(int64_t good) const;
  int64_t count() const { return count_; }

 private:
  std::string path_;
  bool skip_;
  int64_t count_ = 0;
};

// Calls `handle` for every JSON object of `path`, in order. Lines that are not JSON
// objects, and lines whose handler throws a UserError, go to the BadLines policy.
JsonlStats read_jsonl(const std::string& path, const std::function<void(const JsonlLine&)>& handle,
                      const JsonlOptions& options = {});

// True when the first non-blank line of `path` starts a JSON object.
bool looks_like_jsonl(const std::string& path);

}  // namespace hyft::data
