#include "model/causal_lm_loss.h"

#include "kernels/linear_cross_entropy.h"

#include <ATen/ATen.h>

namespace hyft::model {

namespace {

// lm_head's weight (V, D) when the head is a plain matrix (a bias-free Projection, or
// the embedding when tied), so that the fused linear cross-entropy can use it; an
// undefined tensor when an adapter sits in lm_head's slot.
at::Tensor plain_head_weight(const LlamaForCausalLMImpl& model) {
  if (!model.lm_head) return model.model->embed_tokens->weight;
  const auto head = std::dynamic_pointer_cast<Projection>(model.lm_head);
  return head && !head->bias.defined() ? head->weight : at::Tensor();
}

// The target positions: hidden at t predicts labels at t+1, and only labels other
// than kIgnoreIndex count. h (N, D) and y (N,) at those positions; `where` their
// indices among the B*(T-1) shifted positions.
struct Targets {
  at::Tensor h, y, where;
};
Targets target_positions(const at::Tensor& hidden, const at::Tensor& labels) {
  const int64_t D = hidden.size(-1);
  const at::Tensor h = hidden.narrow(1, 0, hidden.size(1) - 1).reshape({-1, D});  // (B*(T-1), D)
  const at::Tensor y = labels.narrow(1, 1, labels.size(1) - 1).reshape({-1});     // (B*(T-1),)
  const at::Tensor where = (y != kIgnoreIndex).nonzero().squeeze(1);
  return {h.index_select(0, where), y.index_select(0, where), where};
}

}  // namespace

at::Tensor target_nll_unfused(const LlamaForCausalLMImpl& model, const at::Tensor& h, const at::Tensor& y,
                              int64_t chunk_tokens) {
  at::Tensor sum = at::zeros({}, h.options().dtype(at::kFloat));
  for (int64_t start = 0; start < h.size(0); start += chunk_tokens) {
    const int64_t len = std::min(chunk_tokens, h.size(0) - start);
    at::Tensor logits = model.logits(h.narrow(0, start, len)).to(at::kFloat);  // (len, V)
    sum = sum + at::cross_entropy_loss(logits, y.narrow(0, start, len), {}, at::Reduction::Sum);
  }
  return sum;
}

TargetNll target_nll(const LlamaForCausalLMImpl& model, const at::Tensor& hidden, const at::Tensor& labels,
                     int64_t chunk_tokens) {
  const auto [h, y, where] = target_positions(hidden, labels);
  const int64_t n = where.size(0);
  if (n == 0) return {at::zeros({}, hidden.options().dtype(at::kFloat)), 0};
  const at::Tensor w = plain_head_weight(model);
  if (w.defined()) return {kernels::linear_cross_entropy_sum(h, w, y, chunk_tokens), n};
  return {target_nll_unfused(model, h, y, chunk_tokens > 0 ? chunk_tokens : 4096), n};
}

at::Tensor row_nll(const LlamaForCausalLMImpl& model, const at::Tensor& hidden, const at::Tensor& labels) {
  const int64_t B = hidden.size(0), T = hidden.size(1);
  const auto [h, y, where] = target_positions(hidden, labels);
  at::Tensor out = at::zeros({B}, hidden.options().dtype(at::kFloat));
  if (where.size(0) == 0) return out;
  const at::Tensor rows = at::arange(B, labels.options()).unsqueeze(1).expand({B, T - 1}).reshape({-1});
  const at::Tensor w = plain_head_weight(model);
  at::Tensor nll;
  if (w.defined()) {
    nll = kernels::linear_cross_entropy_rows(h, w, y);
  } else {
    const at::Tensor logits = model.logits(h).to(at::kFloat);
    nll = at::cross_entropy_loss(logits, y, {}, at::Reduction::None);
  }
  return out.index_add_(0, rows.index_select(0, where), nll);
}

}  // namespace hyft::model
