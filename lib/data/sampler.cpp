#include "data/sampler.h"

#include "common/error.h"
#include "data/shuffle.h"

#include <algorithm>
#include <cmath>

namespace hyft::data {

SamplingKind parse_sampling(const std::string& text, const std::string& flag) {
  if (text == "uniform") return SamplingKind::Uniform;
  if (text == "weighted") return SamplingKind::Weighted;
  if (text == "balanced") return SamplingKind::Balanced;
  fail(flag, ": '", text, "' is not a sampling; use uniform, weighted or balanced");
}

const char* sampling_name(SamplingKind kind) {
  return kind == SamplingKind::Uniform ? "uniform" : kind == SamplingKind::Weighted ? "weighted" : "balanced";
}

std::vector<double> sampling_probabilities(const std::vector<Example>& examples, SamplingKind kind,
                                           double balance_power) {
  HYFT_CHECK(!examples.empty(), "cannot sample from an empty dataset");
  HYFT_CHECK(balance_power >= 0 && balance_power <= 1, "--balance-power must be in [0, 1], got ", balance_power);
  std::vector<double> w(examples.size(), 1.0);
  if (kind == SamplingKind::Weighted) {
    for (size_t i = 0; i < examples.size(); ++i) w[i] = examples[i].weight;
  } else if (kind == SamplingKind::Balanced) {
    std::map<std::string, int64_t> counts;
    for (const auto& ex : examples) {
      HYFT_CHECK(ex.label, "balanced sampling needs a label on every record; line ", ex.line,
                 " has none (set --label-field, or use --sampling uniform)");
      ++counts[*ex.label];
    }
    for (size_t i = 0; i < examples.size(); ++i) w[i] = 1.0 / std::pow(double(counts[*examples[i].label]), balance_power);
  }
  double total = 0;
  for (double x : w) total += x;
  for (double& x : w) x /= total;
  return w;
}

std::map<std::string, std::pair<int64_t, double>> label_distribution(const std::vector<Example>& examples,
                                                                     const std::vector<double>& probabilities) {
  std::map<std::string, std::pair<int64_t, double>> out;
  for (size_t i = 0; i < examples.size(); ++i) {
    auto& e = out[examples[i].label.value_or("(none)")];
    ++e.first;
    e.second += probabilities[i];
  }
  return out;
}

Sampler::Sampler(const std::vector<Example>& examples, const SamplerOptions& options) : options_(options) {
  HYFT_CHECK(options.world >= 1 && options.rank >= 0 && options.rank < options.world, "bad rank ", options.rank,
             " of ", options.world);
  probs_ = sampling_probabilities(examples, options.kind, options.balance_power);
  cumulative_.resize(probs_.size());
  double acc = 0;
  for (size_t i = 0; i < probs_.size(); ++i) cumulative_[i] = acc += probs_[i];
  cumulative_.back() = 1.0;
}

int64_t Sampler::epoch_length() const {
  const int64_t n = int64_t(probs_.size());
  return (n - options_.rank + options_.world - 1) / options_.world;
}

void Sampler::build_epoch() {
  const size_t n = probs_.size();
  const uint64_t stream = uint64_t(state_.epoch) + 1;
  if (options_.kind == SamplingKind::Uniform) {
    epoch_order_ = permutation(n, options_.seed, stream);
  } else {
    Rng rng(options_.seed, stream);
    epoch_order_.resize(n);
    for (auto& idx : epoch_order_)
      idx = size_t(std::upper_bound(cumulative_.begin(), cumulative_.end(), rng.uniform()) - cumulative_.begin());
  }
  built_epoch_ = state_.epoch;
}

int64_t Sampler::next() {
  if (state_.offset >= epoch_length()) {
    ++state_.epoch;
    state_.offset = 0;
  }
  if (built_epoch_ != state_.epoch) build_epoch();
  const size_t pos = size_t(options_.rank + state_.offset * options_.world);
  ++state_.offset;
  return int64_t(std::min(epoch_order_[pos], probs_.size() - 1));
}

void Sampler::restore(const SamplerState& state) {
  HYFT_CHECK(state.epoch >= 0 && state.offset >= 0 && state.offset <= epoch_length(),
             "sampler state (epoch ", state.epoch, ", offset ", state.offset, ") does not fit this dataset");
  state_ = state;
}

}  // namespace hyft::data
