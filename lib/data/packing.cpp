#include "data/packing.h"

#include <c10/util/Exception.h>

namespace hyft::data {

namespace {
// The first row in `used` (tokens per row) with room for n more, or -1.
int64_t first_fit(const std::vector<int64_t>& used, int64_t n, int64_t max_len) {
  for (size_t r = 0; r < used.size(); ++r)
    if (used[r] + n <= max_len) return int64_t(r);
  return -1;
}
}  // namespace

std::vector<PackedRow> pack(const std::vector<const Example*>& documents, int64_t max_len) {
  std::vector<PackedRow> rows;
  std::vector<int64_t> used;
  for (const Example* doc : documents) {
    const int64_t n = int64_t(doc->input_ids.size());
    TORCH_INTERNAL_ASSERT(n <= max_len, "document of ", n, " tokens is longer than the row (", max_len, ")");
    int64_t r = first_fit(used, n, max_len);
    if (r < 0) {
      r = int64_t(rows.size());
      rows.emplace_back();
      used.push_back(0);
    }
    PackedRow& row = rows[size_t(r)];
    for (int64_t t = 0; t < n; ++t) {
      row.input_ids.push_back(doc->input_ids[size_t(t)]);
      row.labels.push_back(t == 0 ? kIgnoreIndex : doc->labels[size_t(t)]);
      row.position_ids.push_back(t);
      row.document_ids.push_back(row.documents);
    }
    ++row.documents;
    used[size_t(r)] += n;
  }
  return rows;
}

bool RowPacker::add(const Example* doc) {
  const int64_t n = int64_t(doc->input_ids.size());
  int64_t r = first_fit(used_, n, max_len_);  // the same choice pack() makes
  if (r < 0) {
    if (int64_t(used_.size()) == max_rows_) return false;
    r = int64_t(used_.size());
    used_.push_back(0);
  }
  docs_.push_back(doc);
  used_[size_t(r)] += n;
  return true;
}

}  // namespace hyft::data
