#include "data/jsonl.h"

#include "common/error.h"

#include <fstream>
#include <iostream>

namespace hyft::data {

void JsonlLine::fail(const std::string& reason) const {
  ::hyft::fail(file, ":", line, ": ", reason);
}

bool is_blank_line(const std::string& text) {
  return text.find_first_not_of(" \t\r") == std::string::npos;
}

nlohmann::json parse_json_line(const std::string& text, const std::string& file, int64_t line) {
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    const std::string why = e.what();
    if (why.find("UTF-8") != std::string::npos) fail(file, ":", line, ": invalid UTF-8");
    fail(file, ":", line, ": not valid JSON (", why, ")");
  }
  if (!value.is_object()) fail(file, ":", line, ": expected a JSON object, got ", value.type_name());
  return value;
}

JsonlStats read_jsonl(const std::string& path, const std::function<void(const JsonlLine&)>& handle,
                      const JsonlOptions& options) {
  std::ifstream in(path, std::ios::binary);
  HYFT_CHECK(in, path, ": cannot open the dataset");
  JsonlStats stats;
  std::string text;
  int64_t line_no = 0;
  while (std::getline(in, text)) {
    ++line_no;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (is_blank_line(text)) continue;
    ++stats.lines;
    try {
      const nlohmann::json value = parse_json_line(text, path, line_no);
      handle(JsonlLine{path, line_no, value});
    } catch (const UserError& e) {
      if (!options.skip_bad_lines) throw;
      if (++stats.skipped <= 5) std::cerr << "warning: skipped " << e.what() << "\n";
    }
  }
  HYFT_CHECK(stats.lines - stats.skipped > 0, path, ": the dataset is empty",
             stats.skipped ? " (every line was bad and skipped)" : "");
  if (stats.skipped > 5) std::cerr << "warning: skipped " << stats.skipped << " bad lines in " << path << "\n";
  return stats;
}

}  // namespace hyft::data
