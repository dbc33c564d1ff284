#include "data/jsonl.h"

#include "common/error.h"

#include <fstream>
#include <iostream>

namespace hyft::data {

void JsonlLine::fail(const std::string& reason) const {
  ::hyft::fail(file, ":", line, ": ", reason);
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
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    ++stats.lines;
    try {
      nlohmann::json value;
      try {
        value = nlohmann::json::parse(text);
      } catch (const nlohmann::json::exception& e) {
        std::string why = e.what();
        if (why.find("invalid UTF-8") != std::string::npos || why.find("UTF-8") != std::string::npos)
          fail(path, ":", line_no, ": invalid UTF-8");
        fail(path, ":", line_no, ": not valid JSON (", why, ")");
      }
      const JsonlLine line{path, line_no, value};
      if (!value.is_object()) line.fail("expected a JSON object, got " + std::string(value.type_name()));
      handle(line);
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
