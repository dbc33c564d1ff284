// Reading the small JSON files hyft consumes (config.json, adapter_config.json,
// model.safetensors.index.json, trainer_state.json, --model-config files): one
// place for the errors, in plain words with the file, line and column.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace hyft::io {

// The file's JSON value. A missing or unreadable file, or text that is not JSON,
// is a UserError "PATH: ..." (`what` says what the file is for, e.g. "model
// config"); a parse error names the line and column.
nlohmann::json read_json_file(const std::string& path, const std::string& what);
// The same with the keys kept in file order (files hyft rewrites).
nlohmann::ordered_json read_ordered_json_file(const std::string& path, const std::string& what);

// Deepest nesting of arrays and objects hyft parses (no real record or config
// comes close; deeper input is refused before parsing, which it would make slow).
constexpr size_t kMaxJsonDepth = 128;
// True when `text` nests arrays/objects deeper than `limit` (brackets in strings
// do not count); stops at the first place that does.
bool nests_deeper_than(const std::string& text, size_t limit);

// The same rules for JSON text from elsewhere: `where` names its source.
nlohmann::json parse_json_text(const std::string& text, const std::string& where);

}  // namespace hyft::io
