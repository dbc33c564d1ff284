#include "io/json_file.h"

#include "common/error.h"
#include "common/strings.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace hyft::io {

namespace {

std::string read_whole(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  HYFT_CHECK(fs::exists(path, ec), path, ": no such file (", what, ")");
  HYFT_CHECK(!fs::is_directory(path, ec), path, ": is a folder, expected a JSON file (", what, ")");
  std::ifstream in(path, std::ios::binary);
  HYFT_CHECK(in, path, ": cannot be read (", what, "); check its permissions");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// "line L, column C" of byte offset `byte` (1-based, as nlohmann counts it).
std::string position(const std::string& text, size_t byte) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i + 1 < byte && i < text.size(); ++i) {
    if (text[i] == '\n') ++line, column = 1;
    else ++column;
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

}  // namespace

bool nests_deeper_than(const std::string& text, size_t limit) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

namespace {

template <typename Json>
Json parse(const std::string& text, const std::string& where) {
  HYFT_CHECK(!trim(text).empty(), where, ": is empty, expected JSON");
  const size_t bad = first_invalid_utf8(text);
  HYFT_CHECK(bad == std::string::npos, where, ": invalid UTF-8 at ", position(text, bad + 1));
  HYFT_CHECK(!nests_deeper_than(text, kMaxJsonDepth), where, ": nests arrays/objects deeper than ", kMaxJsonDepth,
             " levels; not a file hyft reads");
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail(where, ": not valid JSON at ", position(text, e.byte));
  } catch (const nlohmann::json::out_of_range&) {
    fail(where, ": holds a number too large for a double (such as 1e309)");
  }
}

}  // namespace

nlohmann::json read_json_file(const std::string& path, const std::string& what) {
  return parse<nlohmann::json>(read_whole(path, what), path);
}

nlohmann::ordered_json read_ordered_json_file(const std::string& path, const std::string& what) {
  return parse<nlohmann::ordered_json>(read_whole(path, what), path);
}

nlohmann::json parse_json_text(const std::string& text, const std::string& where) {
  return parse<nlohmann::json>(text, where);
}

}  // namespace hyft::io
