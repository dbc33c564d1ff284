#include "data/pretokenized.h"

#include <string>

namespace hyft::data {

namespace {
std::vector<int64_t> int_list(const JsonlLine& line, const char* key, int64_t vocab_size,
                              bool allow_ignore) {
  const auto& v = line.value[key];
  if (!v.is_array()) line.fail(std::string("'") + key + "' must be a list of integers");
  std::vector<int64_t> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer())
      line.fail(std::string("'") + key + "'[" + std::to_string(i) + "] is not an integer");
    const int64_t id = v[i].get<int64_t>();
    if ((id < 0 || id >= vocab_size) && !(allow_ignore && id == kIgnoreIndex))
      line.fail(std::string("'") + key + "'[" + std::to_string(i) + "] = " + std::to_string(id) +
                " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
    out.push_back(id);
  }
  return out;
}
}  // namespace

Example parse_pretokenized(const JsonlLine& line, int64_t vocab_size) {
  if (!line.value.contains("input_ids"))
    line.fail("missing field 'input_ids' (pre-tokenized records are "
              "{\"input_ids\": [...], \"labels\": [...]})");
  Example ex;
  ex.input_ids = int_list(line, "input_ids", vocab_size, false);
  if (ex.input_ids.empty()) line.fail("'input_ids' is empty");
  if (line.value.contains("labels") && !line.value["labels"].is_null()) {
    ex.labels = int_list(line, "labels", vocab_size, true);
    if (ex.labels.size() != ex.input_ids.size())
      line.fail("'labels' has " + std::to_string(ex.labels.size()) + " entries but 'input_ids' has " +
                std::to_string(ex.input_ids.size()));
  } else {
    ex.labels = ex.input_ids;
  }
  return ex;
}

}  // namespace hyft::data
