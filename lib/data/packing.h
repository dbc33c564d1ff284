// Packing: documents share rows of max_seq_len tokens. Each row carries
// document ids and positions restarting at 0 per document, so the attention of
// the hybrid rule never crosses a boundary; the first token of each document carries no
// loss (the previous document's last token must not predict it).
#pragma once

#include "data/example.h"

#include <vector>

namespace hyft::data {

struct PackedRow {
  std::vector<int64_t> input_ids, labels, position_ids, document_ids;
  int64_t documents = 0;
};

// First fit, in order: each document goes into the first row with room for it, and
// opens a new row when none has. Every document must be at most max_len tokens (the
// length policy sees to it).
std::vector<PackedRow> pack(const std::vector<const Example*>& documents, int64_t max_len);

// Packing a training micro-batch draws past the first document that fits no row
// (it waits for the next micro-batch) until this many have missed, so that shorter
// ones fill the rows' gaps; at most kPackMaxWaiting documents wait at a time.
constexpr int64_t kPackLookahead = 32;
constexpr int64_t kPackMaxWaiting = 128;

// The same packing, fed one document at a time into at most `max_rows` rows: add()
// refuses (and leaves out) the document that fits no row when all are open.
class RowPacker {
 public:
  RowPacker(int64_t max_len, int64_t max_rows) : max_len_(max_len), max_rows_(max_rows) {}
  bool add(const Example* doc);
  std::vector<PackedRow> rows() const { return pack(docs_, max_len_); }

 private:
  int64_t max_len_, max_rows_;
  std::vector<int64_t> used_;  // tokens in each open row
  std::vector<const Example*> docs_;
};

}  // namespace hyft::data
