#include "generate/decode_graphs.h"

#include "common/runtime.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

namespace hyft::generate {

namespace {
int64_t next_pow2(int64_t n) {
  int64_t p = 1;
  while (p < n) p *= 2;
  return p;
}
}  // namespace

struct DecodeGraphs::Graph {
  at::cuda::CUDAGraph graph;
  // The graph's own tensors: its inputs, one (3, B) block filled by one copy a step
  // (ids, positions, adapter of each row), viewed as (B, 1), (B,) and (B,); and
  // its output logits (B, V).
  at::Tensor inputs, ids, positions, rows, logits;
};

DecodeGraphs::DecodeGraphs(model::LlamaForCausalLMImpl& model, model::SlotCache& cache,
                           std::shared_ptr<model::RowAdapters> adapters)
    : model_(model), cache_(cache), adapters_(std::move(adapters)) {
  enabled_ = model_.device().is_cuda() && !switched_off("HYFT_DECODE_GRAPHS");
}

DecodeGraphs::~DecodeGraphs() = default;

DecodeGraphs::Graph& DecodeGraphs::graph_for(int64_t rows, int64_t keys) {
  auto& slot = graphs_[{rows, keys}];
  if (slot) return *slot;
  auto g = std::make_unique<Graph>();
  const auto device = model_.device();
  const auto opts = at::TensorOptions().dtype(at::kLong).device(device);
  g->inputs = at::zeros({3, rows}, opts);
  g->ids = g->inputs[0].view({rows, 1});
  g->positions = g->inputs[1];
  g->rows = g->inputs[2].fill_(-1);
  if (adapters_) adapters_->rows = g->rows;  // the graph reads its own row choice
  // Capture on a side stream after two eager runs (lazy allocations and caches
  // settle), as torch.cuda.graph does. Those runs write keys at position 0 of
  // slots 0..rows-1, where running sequences keep theirs: saved and put back.
  std::vector<at::Tensor> saved_k, saved_v;
  for (size_t l = 0; l < cache_.k.size(); ++l) {
    saved_k.push_back(cache_.k[l].narrow(0, 0, rows).select(1, 0).clone());
    saved_v.push_back(cache_.v[l].narrow(0, 0, rows).select(1, 0).clone());
  }
  const auto current = c10::cuda::getCurrentCUDAStream(device.index());
  auto side = c10::cuda::getStreamFromPool(false, device.index());
  {
    c10::cuda::CUDAStreamGuard guard(side);
    side.synchronize();
    current.synchronize();
    for (int i = 0; i < 2; ++i) model_.forward_slots(g->ids, g->positions, cache_, keys);
    side.synchronize();
    // Thread-local capture: the server's other threads (metrics, the output filter's
    // model) may call CUDA meanwhile without breaking it.
    g->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    g->logits = model_.forward_slots(g->ids, g->positions, cache_, keys);
    g->graph.capture_end();
    side.synchronize();
  }
  for (size_t l = 0; l < cache_.k.size(); ++l) {
    cache_.k[l].narrow(0, 0, rows).select(1, 0).copy_(saved_k[l]);
    cache_.v[l].narrow(0, 0, rows).select(1, 0).copy_(saved_v[l]);
  }
  slot = std::move(g);
  return *slot;
}

at::Tensor DecodeGraphs::step(const std::vector<int64_t>& ids, const std::vector<int64_t>& positions,
                              const std::vector<int64_t>& adapters) {
  const int64_t hi = int64_t(ids.size());
  const auto device = model_.device();
  const int64_t max_pos = *std::max_element(positions.begin(), positions.end());
  if (!enabled_) {
    if (adapters_) adapters_->rows = at::tensor(adapters, at::kLong).to(device);
    return model_.forward_slots(at::tensor(ids, at::kLong).view({hi, 1}).to(device),
                                at::tensor(positions, at::kLong).to(device), cache_, max_pos + 1);
  }
  const int64_t rows = std::min(next_pow2(hi), cache_.slots());
  const int64_t keys = std::min(std::max<int64_t>(128, next_pow2(max_pos + 1)), cache_.max_len());
  Graph& g = graph_for(rows, keys);
  // Rows past hi are free slots: token 0 at position 0, no adapter.
  std::vector<int64_t> in(size_t(3 * rows), 0);
  std::copy(ids.begin(), ids.end(), in.begin());
  std::copy(positions.begin(), positions.end(), in.begin() + rows);
  std::fill(in.begin() + 2 * rows, in.end(), -1);
  if (adapters_) std::copy(adapters.begin(), adapters.end(), in.begin() + 2 * rows);
  g.inputs.copy_(at::tensor(in, at::kLong).view({3, rows}));
  g.graph.replay();
  return g.logits.narrow(0, 0, hi);
}

}  // namespace hyft::generate
