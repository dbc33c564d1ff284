// CUDA graphs of the engine's decoding step. A step of a small model is a few
// hundred short kernels, so launching them costs more than running them; a graph
// captured once per shape launches them all at once. Shapes are bucketed: rows
// (slots 0..B-1) and keys to the next power of two, so a few graphs cover every
// step. Replaying needs no host sync: ids and positions are copied into the
// graph's own input tensors, logits read from its output. On the CPU, or with
// HYFT_DECODE_GRAPHS=0, steps run eagerly (model.forward_slots), the reference.
#pragma once

#include "model/llama.h"

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

namespace hyft::generate {

class DecodeGraphs {
 public:
  // `adapters`: the model's per-row adapter choice (null: one adapter or none).
  DecodeGraphs(model::LlamaForCausalLMImpl& model, model::SlotCache& cache,
               std::shared_ptr<model::RowAdapters> adapters = nullptr);
  ~DecodeGraphs();
  // Logits (hi, V) of one step over slots 0..hi-1, where the model runs (the graph's
  // output: read it before the next step); `adapters` (empty when there is no
  // choice) the adapter of each row.
  at::Tensor step(const std::vector<int64_t>& ids, const std::vector<int64_t>& positions,
                  const std::vector<int64_t>& adapters = {});
  bool enabled() const { return enabled_; }

 private:
  struct Graph;
  Graph& graph_for(int64_t rows, int64_t keys);

  model::LlamaForCausalLMImpl& model_;
  model::SlotCache& cache_;
  std::shared_ptr<model::RowAdapters> adapters_;
  bool enabled_ = false;
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<Graph>> graphs_;
};

}  // namespace hyft::generate
