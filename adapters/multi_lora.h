// Several LoRA adapters on one frozen base, chosen per row of a batch (serving
// many fine-tunes of one model at once). Each projection an adapter targets gets a
// MultiLoraLinear in its slot: y = base(x) + sum_k [row uses k] scaling_k B_k A_k x,
// the row's choice read from a shared model::RowAdapters ((B,) adapter index, -1
// for the base alone) that the decoding engine fills before each forward pass. Every
// adapter's delta is computed for every row and masked (a handful of small
// matrices); inference only. Adapters that grow the vocabulary or train whole
// modules (modules_to_save) change the base itself and cannot share it.
#pragma once

#include "adapters/peft_format.h"
#include "model/llama.h"

#include <memory>
#include <string>
#include <vector>

namespace hyft::adapters {

class MultiLoraLinear : public model::LinearLayer {
 public:
  MultiLoraLinear(std::shared_ptr<model::LinearLayer> base, std::shared_ptr<model::RowAdapters> router);
  // Adds adapter `id`'s A (r, in) and B (out, r), stored in the base's dtype.
  void add(int64_t id, const at::Tensor& A, const at::Tensor& B, double scaling);
  at::Tensor forward(const at::Tensor& x) override;  // (B, T, in) -> (B, T, out)
  model::Projection* base_projection() override { return base_layer->base_projection(); }
  at::Tensor forward_over(const at::Tensor& x, const at::Tensor& y) override;

  std::shared_ptr<model::LinearLayer> base_layer;
  std::shared_ptr<model::RowAdapters> router;

 private:
  struct Entry {
    int64_t id;
    at::Tensor A, B;
    double scaling;
  };
  std::vector<Entry> entries_;
  at::Tensor add_deltas(const at::Tensor& x, at::Tensor y) const;  // y + each row's adapter term
};

// Attaches `adapters` (adapter k gets index k) to the model's projections and
// returns the RowAdapters their rows are chosen by. `sources` name them in errors.
std::shared_ptr<model::RowAdapters> attach_adapters(model::LlamaForCausalLMImpl& model,
                                               const std::vector<LoraAdapter>& adapters,
                                               const std::vector<std::string>& sources);

}  // namespace hyft::adapters
