#include "data/packing.h"

#include <c10/util/Exception.h>

namespace hyft::data {

std::vector<PackedRow> pack(const std::vector<const Example*>& documents, int64_t max_len) {
  std::vector<PackedRow> rows;
  for (const Example* doc : documents) {
    const int64_t n = int64_t(doc->input_ids.size());
    TORCH_INTERNAL_ASSERT(n <= max_len, "document of ", n, " tokens is longer than the row (", max_len, ")");
    if (rows.empty() || int64_t(rows.back().input_ids.size()) + n > max_len) rows.emplace_back();
    PackedRow& row = rows.back();
    for (int64_t t = 0; t < n; ++t) {
      row.input_ids.push_back(doc->input_ids[size_t(t)]);
      row.labels.push_back(t == 0 ? kIgnoreIndex : doc->labels[size_t(t)]);
      row.position_ids.push_back(t);
      row.document_ids.push_back(row.documents);
    }
    ++row.documents;
  }
  return rows;
}

bool RowPacker::add(const Example* doc) {
  const int64_t n = int64_t(doc->input_ids.size());
  if (used_ > 0 && used_ + n > max_len_) {  // opens a new row, as pack() would
    if (rows_ == max_rows_) return false;
    ++rows_;
    used_ = 0;
  }
  docs_.push_back(doc);
  used_ += n;
  return true;
}

}  // namespace hyft::data
