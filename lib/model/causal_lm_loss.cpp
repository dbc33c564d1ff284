#include "model/causal_lm_loss.h"

#include <ATen/ATen.h>

namespace hyft::model {

TargetNll target_nll(const LlamaForCausalLMImpl& model, const at::Tensor& hidden,
                     const at::Tensor& labels, int64_t chunk_tokens) {
  const int64_t D = hidden.size(-1);
  // Shift: hidden at t predicts labels at t+1.
  at::Tensor h = hidden.narrow(1, 0, hidden.size(1) - 1).reshape({-1, D});  // (B*(T-1), D)
  at::Tensor y = labels.narrow(1, 1, labels.size(1) - 1).reshape({-1});      // (B*(T-1),)
  at::Tensor where = (y != kIgnoreIndex).nonzero().squeeze(1);
  const int64_t n = where.size(0);
  TargetNll out{at::zeros({}, hidden.options().dtype(at::kFloat)), n};
  if (n == 0) return out;
  h = h.index_select(0, where);
  y = y.index_select(0, where);
  for (int64_t start = 0; start < n; start += chunk_tokens) {
    const int64_t len = std::min(chunk_tokens, n - start);
    at::Tensor logits = model.logits(h.narrow(0, start, len)).to(at::kFloat);  // (len, V)
    out.sum = out.sum + at::cross_entropy_loss(logits, y.narrow(0, start, len), {},
                                               at::Reduction::Sum);
  }
  return out;
}

at::Tensor row_nll(const LlamaForCausalLMImpl& model, const at::Tensor& hidden, const at::Tensor& labels) {
  const int64_t B = hidden.size(0), T = hidden.size(1), D = hidden.size(-1);
  at::Tensor h = hidden.narrow(1, 0, T - 1).reshape({-1, D});
  at::Tensor y = labels.narrow(1, 1, T - 1).reshape({-1});
  at::Tensor rows = at::arange(B, labels.options()).unsqueeze(1).expand({B, T - 1}).reshape({-1});
  at::Tensor where = (y != kIgnoreIndex).nonzero().squeeze(1);
  at::Tensor out = at::zeros({B}, hidden.options().dtype(at::kFloat));
  if (where.size(0) == 0) return out;
  at::Tensor logits = model.logits(h.index_select(0, where)).to(at::kFloat);
  at::Tensor nll = at::cross_entropy_loss(logits, y.index_select(0, where), {}, at::Reduction::None);
  return out.index_add_(0, rows.index_select(0, where), nll);
}

}  // namespace hyft::model
