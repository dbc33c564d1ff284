#include "data/batch.h"

#include "common/error.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace hyft::data {

namespace {

// Rows of (ids, labels, positions, documents) into padded (B, T) tensors.
template <typename Row, typename Get>
Batch assemble(const std::vector<Row>& rows, const at::Device& device, bool with_documents, Get get) {
  int64_t T = 0;
  for (const auto& r : rows) T = std::max<int64_t>(T, int64_t(get(r).ids.size()));
  const int64_t B = int64_t(rows.size());
  at::Tensor ids = at::zeros({B, T}, at::kLong), labels = at::full({B, T}, kIgnoreIndex, at::kLong);
  at::Tensor pos = at::zeros({B, T}, at::kLong), doc = at::full({B, T}, -1, at::kLong);
  Batch batch;
  for (int64_t b = 0; b < B; ++b) {
    const auto v = get(rows[size_t(b)]);
    const int64_t n = int64_t(v.ids.size());
    std::copy(v.ids.begin(), v.ids.end(), ids[b].data_ptr<int64_t>());
    std::copy(v.labels.begin(), v.labels.end(), labels[b].data_ptr<int64_t>());
    auto* p = pos[b].data_ptr<int64_t>();
    auto* d = doc[b].data_ptr<int64_t>();
    for (int64_t t = 0; t < n; ++t) {
      p[t] = v.positions ? (*v.positions)[size_t(t)] : t;
      d[t] = v.documents ? (*v.documents)[size_t(t)] : 0;
    }
    batch.tokens += n;
    for (int64_t t = 1; t < n; ++t) batch.targets += v.labels[size_t(t)] != kIgnoreIndex;
  }
  batch.input_ids = ids.to(device);
  batch.labels = labels.to(device);
  batch.layout.position_ids = pos.to(device);
  if (with_documents) batch.layout.document_ids = doc.to(device);
  return batch;
}

struct RowView {
  const std::vector<int64_t>& ids;
  const std::vector<int64_t>& labels;
  const std::vector<int64_t>* positions;
  const std::vector<int64_t>* documents;
};

}  // namespace

Batch make_batch(const std::vector<const Example*>& examples, const at::Device& device) {
  return assemble(examples, device, false,
                  [](const Example* e) { return RowView{e->input_ids, e->labels, nullptr, nullptr}; });
}

Batch make_packed_batch(const std::vector<PackedRow>& rows, const at::Device& device) {
  return assemble(rows, device, true, [](const PackedRow& r) {
    return RowView{r.input_ids, r.labels, &r.position_ids, &r.document_ids};
  });
}

Batch make_padding_free_batch(const std::vector<const Example*>& examples, const at::Device& device) {
  int64_t total = 0;
  for (const Example* e : examples) total += int64_t(e->input_ids.size());
  return make_packed_batch(pack(examples, std::max<int64_t>(1, total)), device);  // one row holds them all
}

PaddingFree parse_padding_free(const std::string& text, const std::string& flag) {
  if (text == "auto") return PaddingFree::Auto;
  if (text == "on" || text == "true") return PaddingFree::On;
  if (text == "off" || text == "false") return PaddingFree::Off;
  fail(flag, ": '", text, "' is not a choice; use auto, on or off");
}

const char* padding_free_name(PaddingFree p) {
  return p == PaddingFree::On ? "on" : p == PaddingFree::Off ? "off" : "auto";
}

Batch make_micro_batch(const std::vector<const Example*>& examples, const at::Device& device, PaddingFree mode) {
  bool free = mode == PaddingFree::On;
  if (mode == PaddingFree::Auto && device.is_cuda() && examples.size() > 1) {
    int64_t longest = 0, total = 0;
    for (const Example* e : examples) {
      longest = std::max<int64_t>(longest, int64_t(e->input_ids.size()));
      total += int64_t(e->input_ids.size());
    }
    const int64_t slots = longest * int64_t(examples.size());
    free = 10 * (slots - total) >= slots;  // padding would be a tenth or more of the batch
  }
  return free ? make_padding_free_batch(examples, device) : make_batch(examples, device);
}

}  // namespace hyft::data
