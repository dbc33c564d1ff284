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
  // Logits (hi, V) on the CPU, float32, of one step over slots 0..hi-1; `adapters`
  // (empty when there is no choice) the adapter of each row.
  at::Tensor step(const std::vector<int64_t>& ids, const std::vector<int64_t>& positions,
                  const std::vector<int64_t>& adapters = {});
  // The same step for rows that all decode greedily: each row's most likely token
  // (the first of equals), taken where the logits are, so that only hi ids cross to
  // the host instead of hi x V floats.
  std::vector<int64_t> step_argmax(const std::vector<int64_t>& ids, const std::vector<int64_t>& positions,
                                   const std::vector<int64_t>& adapters = {});
  bool enabled() const { return enabled_; }

 private:
  struct Graph;
  Graph& graph_for(int64_t rows, int64_t keys);
  // The step's logits (hi, V) where the model runs: the graph's output or the eager step's.
  at::Tensor step_on_device(const std::vector<int64_t>& ids, const std::vector<int64_t>& positions,
                            const std::vector<int64_t>& adapters);

  model::LlamaForCausalLMImpl& model_;
  model::SlotCache& cache_;
  std::shared_ptr<model::RowAdapters> adapters_;
  bool enabled_ = false;
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<Graph>> graphs_;
};

}  // namespace hyft::generate
