#include "generate/sampling.h"

#include "kernels/fused_ops.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <limits>
#include <mutex>

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

namespace {

// A float32 (n,) tensor of f(settings[i]) on `device`.
template <typename F>
at::Tensor per_row(const std::vector<SamplingSettings>& settings, const at::Device& device, F f) {
  std::vector<float> v;
  for (const auto& s : settings) v.push_back(f(s));
  return at::tensor(v, at::kFloat).to(device);
}

// A uniform draw in [0, 1) from a CPU generator: 53 random bits.
double uniform01(at::Generator& generator) {
  auto* g = at::check_generator<at::CPUGeneratorImpl>(generator);
  std::lock_guard<std::mutex> lock(generator.mutex());
  return double(g->random64() >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace

at::Tensor process_logits_batch(const at::Tensor& logits_in, const std::vector<const std::vector<int64_t>*>& histories,
                                const std::vector<SamplingSettings>& settings) {
  const int64_t n = logits_in.size(0), V = logits_in.size(1);
  TORCH_INTERNAL_ASSERT(int64_t(histories.size()) == n && int64_t(settings.size()) == n);
  const auto device = logits_in.device();
  const float neg_inf = -std::numeric_limits<float>::infinity();
  at::Tensor logits = logits_in.to(at::kFloat).clone();  // (n, V)
  // The repetition penalty: every (row, seen token) pair at once.
  std::vector<int64_t> rows, tokens;
  std::vector<float> penalties;
  for (int64_t i = 0; i < n; ++i) {
    const auto& s = settings[size_t(i)];
    if (s.repetition_penalty == 1.0) continue;
    for (const int64_t t : *histories[size_t(i)]) {
      rows.push_back(i);
      tokens.push_back(t);
      penalties.push_back(float(s.repetition_penalty));
    }
  }
  if (!rows.empty()) {
    const at::Tensor r = at::tensor(rows, at::kLong).to(device), t = at::tensor(tokens, at::kLong).to(device);
    const at::Tensor p = at::tensor(penalties, at::kFloat).to(device);
    const at::Tensor seen = logits.index({r, t});
    logits.index_put_({r, t}, at::where(seen < 0, seen * p, seen / p));
  }
  // Greedy rows stop here (their temperature, top-k and top-p are left out below).
  auto sampled = [](const SamplingSettings& s) { return s.temperature > 0; };
  auto top_k = [&](const SamplingSettings& s) { return sampled(s) && s.top_k > 0 && s.top_k < V ? s.top_k : 0; };
  bool any_temperature = false, any_top_p = false;
  int64_t K = 0;  // the largest top-k (0: none)
  for (const auto& s : settings) {
    if (!sampled(s)) continue;
    any_temperature = any_temperature || s.temperature != 1.0;
    K = std::max(K, top_k(s));
    any_top_p = any_top_p || s.top_p < 1.0;
  }
  if (any_temperature)
    logits = logits / per_row(settings, device, [&](const SamplingSettings& s) {
               return sampled(s) ? float(s.temperature) : 1.0f;
             }).unsqueeze(1);
  if (K > 0) {  // each row's k-th largest value; rows without top-k keep everything
    std::vector<int64_t> ks;
    for (const auto& s : settings) ks.push_back(top_k(s));
    const at::Tensor k = at::tensor(ks, at::kLong).to(device).unsqueeze(1);  // (n, 1)
    const at::Tensor values = std::get<0>(at::topk(logits, K, 1));          // (n, K), descending
    const at::Tensor kth = at::where(k > 0, values.gather(1, (k - 1).clamp_min(0)), neg_inf);
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (any_top_p) {  // as process_logits, row by row: thresholds 1 - top_p (-1: nothing dropped)
    auto [sorted, order] = at::sort(logits, /*dim=*/1, /*descending=*/false);
    const at::Tensor cumulative = at::softmax(sorted, 1).cumsum(1);
    const at::Tensor threshold = per_row(settings, device, [&](const SamplingSettings& s) {
      return sampled(s) && s.top_p < 1.0 ? float(1.0 - s.top_p) : -1.0f;
    });
    at::Tensor remove_sorted = cumulative <= threshold.unsqueeze(1);
    remove_sorted.select(1, V - 1).fill_(false);
    const at::Tensor remove = at::zeros_like(remove_sorted).scatter(1, order, remove_sorted);
    logits = logits.masked_fill(remove, neg_inf);
  }
  return logits;
}

std::vector<int64_t> next_tokens(const at::Tensor& logits, const std::vector<const std::vector<int64_t>*>& histories,
                                 const std::vector<SamplingSettings>& settings,
                                 const std::vector<at::Generator*>& generators) {
  const int64_t n = logits.size(0);
  TORCH_INTERNAL_ASSERT(int64_t(generators.size()) == n);
  // One uniform draw a sampled row, from its own generator: a row's token depends on
  // its logits and its generator alone, whatever else shares the batch.
  std::vector<double> u(size_t(n), 0.0);
  std::vector<int64_t> is_sampled(size_t(n), 0);
  for (int64_t i = 0; i < n; ++i)
    if (settings[size_t(i)].temperature > 0) {
      u[size_t(i)] = uniform01(*generators[size_t(i)]);
      is_sampled[size_t(i)] = 1;
    }
  const int64_t sampled_rows = std::count(is_sampled.begin(), is_sampled.end(), 1);
  const at::Tensor processed = process_logits_batch(logits, histories, settings);  // (n, V)
  at::Tensor choice;
  // Greedy rows: the most likely token (the first of equals).
  if (sampled_rows < n) choice = kernels::argmax_rows(processed);
  if (sampled_rows > 0) {
    // The token whose cumulative probability first exceeds u: an inverse-CDF draw from
    // softmax(processed), in float64 so the sums over V stay exact enough.
    const auto device = processed.device();
    const at::Tensor cdf = at::softmax(processed, 1, at::kDouble).cumsum(1);                 // (n, V)
    const at::Tensor target = at::tensor(u, at::kDouble).to(device).unsqueeze(1) * cdf.narrow(1, cdf.size(1) - 1, 1);
    const at::Tensor drawn = at::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true)
                                 .squeeze(1)
                                 .clamp_max(cdf.size(1) - 1);
    choice = sampled_rows == n ? drawn : at::where(at::tensor(is_sampled, at::kLong).to(device).ne(0), drawn, choice);
  }
  const at::Tensor host = choice.to(at::kCPU, at::kLong).contiguous();
  return {host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + n};
}

int64_t next_token(const at::Tensor& logits, const std::vector<int64_t>& history, const SamplingSettings& s,
                   at::Generator& generator) {
  return next_tokens(logits.view({1, -1}), {&history}, {s}, {&generator})[0];
}

}  // namespace hyft::generate
