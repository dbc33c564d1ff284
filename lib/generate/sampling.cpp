#include "generate/sampling.h"

#include <ATen/ATen.h>

#include <limits>

namespace hyft::generate {

at::Tensor process_logits(const at::Tensor& logits_in, const std::vector<int64_t>& history,
                          const SamplingSettings& s) {
  at::Tensor logits = logits_in.to(at::kFloat);  // (V,); copied only where changed in place
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (s.repetition_penalty != 1.0 && !history.empty()) {
    // Each token seen so far: a positive logit is divided by the penalty, a
    // negative one multiplied (both make it less likely).
    logits = logits.clone();
    at::Tensor ids = at::tensor(history, at::kLong).to(logits.device());
    at::Tensor seen = logits.index_select(0, ids);
    seen = at::where(seen < 0, seen * s.repetition_penalty, seen / s.repetition_penalty);
    logits.index_put_({ids}, seen);
  }
  if (s.temperature <= 0) return logits;  // greedy: argmax of the penalised logits
  if (s.temperature != 1.0) logits = logits / s.temperature;
  const int64_t V = logits.size(0);
  if (s.top_k > 0 && s.top_k < V) {
    const at::Tensor kth = std::get<0>(at::topk(logits, s.top_k)).select(0, s.top_k - 1);
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (s.top_p < 1.0) {
    // Drop the least likely tokens whose total probability is at most 1 - top_p,
    // always keeping the most likely one.
    auto [sorted, order] = at::sort(logits, /*dim=*/0, /*descending=*/false);
    at::Tensor cumulative = at::softmax(sorted, 0).cumsum(0);
    at::Tensor remove_sorted = cumulative <= (1.0 - s.top_p);
    remove_sorted.index_put_({V - 1}, false);
    at::Tensor remove = at::zeros_like(remove_sorted).scatter(0, order, remove_sorted);
    logits = logits.masked_fill(remove, neg_inf);
  }
  return logits;
}

int64_t next_token(const at::Tensor& logits, const std::vector<int64_t>& history, const SamplingSettings& s,
                   at::Generator& generator) {
  const at::Tensor processed = process_logits(logits, history, s);
  if (s.temperature <= 0) return processed.argmax().item<int64_t>();
  const at::Tensor probs = at::softmax(processed, 0);
  return at::multinomial(probs, 1, /*replacement=*/false, generator).item<int64_t>();
}

}  // namespace hyft::generate
