#include "eval/evaluate.h"

#include "common/progress.h"
#include "model/causal_lm_loss.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

namespace hyft::eval {

EvalResult evaluate(model::LlamaForCausalLMImpl& model, const std::vector<data::Example>& examples,
                    const EvalOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const at::Device device = model.lm_head_weight().device();
  at::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();

  // Longest first: similar lengths share a micro-batch, and memory peaks at once.
  std::vector<size_t> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return examples[a].input_ids.size() > examples[b].input_ids.size();
  });

  Progress progress("eval", static_cast<int64_t>(examples.size()), options.progress);
  double nll = 0.0;
  int64_t tokens = 0;
  const size_t mb = static_cast<size_t>(std::max<int64_t>(1, options.micro_batch));
  for (size_t first = 0; first < order.size(); first += mb) {
    const size_t B = std::min(mb, order.size() - first);
    const int64_t T = static_cast<int64_t>(examples[order[first]].input_ids.size());
    // Right padding: pads come after every real token, so causal attention never
    // lets a real token see them; their labels are -100.
    at::Tensor ids = at::zeros({int64_t(B), T}, at::kLong);
    at::Tensor labels = at::full({int64_t(B), T}, model::kIgnoreIndex, at::kLong);
    at::Tensor positions = at::zeros({int64_t(B), T}, at::kLong);  // pads keep position 0
    for (size_t b = 0; b < B; ++b) {
      const auto& ex = examples[order[first + b]];
      const int64_t n = static_cast<int64_t>(ex.input_ids.size());
      std::copy(ex.input_ids.begin(), ex.input_ids.end(), ids[b].data_ptr<int64_t>());
      std::copy(ex.labels.begin(), ex.labels.end(), labels[b].data_ptr<int64_t>());
      positions[b].narrow(0, 0, n).copy_(at::arange(n, at::kLong));
    }
    const attention::Layout layout{positions.to(device), {}};
    const auto result = model::target_nll(model, model.hidden_states(ids.to(device), layout),
                                          labels.to(device));
    nll += result.sum.item<double>();
    tokens += result.count;
    progress.advance(int64_t(B));
  }
  progress.finish();
  if (was_training) model.train();

  EvalResult r;
  r.tokens = tokens;
  r.examples = static_cast<int64_t>(examples.size());
  r.loss = tokens ? nll / double(tokens) : std::nan("");
  r.perplexity = std::exp(r.loss);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace hyft::eval
