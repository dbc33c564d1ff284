#include "data/jsonl.h"

#include "common/error.h"
#include "common/strings.h"
#include "io/json_file.h"

#include <fstream>
#include <iostream>

namespace hyft::data {

namespace {
constexpr int64_t kReported = 5;  // bad lines reported one by one before the summary
}

void JsonlLine::fail(const std::string& reason) const {
  ::hyft::fail(file, ":", line, ": ", reason);
}

ParsedLine parse_jsonl_line(const std::string& text, const std::string& file, int64_t line) {
  ParsedLine out;
  if (text.find_first_not_of(" \t\r") == std::string::npos) return out;
  const std::string where = file + ":" + std::to_string(line) + ": ";
  out.status = ParsedLine::Status::Bad;
  if (text.size() > kMaxLineBytes) {
    out.error = where + "the line is " + std::to_string(text.size() >> 20) + " MiB, over the " +
                std::to_string(kMaxLineBytes >> 20) + " MiB limit of one record; split the text into several records";
    return out;
  }
  const size_t bad = first_invalid_utf8(text);
  if (bad != std::string::npos) {
    out.error = where + "invalid UTF-8 at byte " + std::to_string(bad + 1);
    return out;
  }
  if (io::nests_deeper_than(text, io::kMaxJsonDepth)) {
    out.error = where + "nests arrays/objects deeper than " + std::to_string(io::kMaxJsonDepth) +
                " levels; not a record";
    return out;
  }
  try {
    out.value = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    out.error = where + "not valid JSON (at character " + std::to_string(e.byte) + ")";
    return out;
  } catch (const nlohmann::json::out_of_range&) {
    out.error = where + "holds a number too large for a double (such as 1e309)";
    return out;
  }
  if (!out.value.is_object()) {
    out.error = where + "expected a JSON object, got " + out.value.type_name();
    return out;
  }
  out.status = ParsedLine::Status::Object;
  return out;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HYFT_CHECK(in, path, ": cannot open the dataset");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

void BadLines::add(const std::string& error) {
  if (!skip_) throw UserError(error);
  if (++count_ <= kReported) std::cerr << "warning: skipped " << error << "\n";
}

void BadLines::finish(int64_t good) const {
  if (count_ > kReported) std::cerr << "warning: skipped " << count_ << " bad lines in " << path_ << "\n";
  HYFT_CHECK(good > 0, path_, ": the dataset is empty", count_ ? " (every line was bad and skipped)" : "");
}

JsonlStats read_jsonl(const std::string& path, const std::function<void(const JsonlLine&)>& handle,
                      const JsonlOptions& options) {
  const std::vector<std::string> lines = read_lines(path);
  BadLines bad(path, options.skip_bad_lines);
  JsonlStats stats;
  for (size_t i = 0; i < lines.size(); ++i) {
    const int64_t line_no = int64_t(i) + 1;
    const ParsedLine parsed = parse_jsonl_line(lines[i], path, line_no);
    if (parsed.status == ParsedLine::Status::Blank) continue;
    ++stats.lines;
    if (parsed.status == ParsedLine::Status::Bad) {
      bad.add(parsed.error);
      continue;
    }
    try {
      handle(JsonlLine{path, line_no, parsed.value});
    } catch (const UserError& e) {
      bad.add(e.what());
    }
  }
  stats.skipped = bad.count();
  bad.finish(stats.lines - stats.skipped);
  return stats;
}

bool looks_like_jsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first != std::string::npos) return line[first] == '{';
  }
  return false;
}

}  // namespace hyft::data
