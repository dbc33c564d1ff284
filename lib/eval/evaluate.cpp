#include "eval/evaluate.h"

#include "common/progress.h"
#include "data/batch.h"
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
  const at::Device device = model.device();
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
    std::vector<const data::Example*> rows;
    for (size_t b = 0; b < B; ++b) rows.push_back(&examples[order[first + b]]);
    const data::Batch batch = data::make_batch(rows, device);
    const auto result = model::target_nll(model, model.hidden_states(batch.input_ids, batch.layout), batch.labels);
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
