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
  state_.position = options.rank;
}

int64_t Sampler::epoch_length() const {
  return (int64_t(probs_.size()) + options_.world - 1) / options_.world;
}

double Sampler::epoch() const { return double(state_.position) / double(probs_.size()); }

void Sampler::build_epoch(int64_t epoch) {
  const size_t n = probs_.size();
  const uint64_t stream = uint64_t(epoch) + 1;
  if (options_.kind == SamplingKind::Uniform) {
    epoch_order_ = permutation(n, options_.seed, stream);
  } else {
    Rng rng(options_.seed, stream);
    epoch_order_.resize(n);
    for (auto& idx : epoch_order_)
      idx = size_t(std::upper_bound(cumulative_.begin(), cumulative_.end(), rng.uniform()) - cumulative_.begin());
  }
  built_epoch_ = epoch;
}

int64_t Sampler::index_at(int64_t position) {
  const int64_t n = int64_t(probs_.size());
  if (built_epoch_ != position / n) build_epoch(position / n);
  return int64_t(std::min(epoch_order_[size_t(position % n)], probs_.size() - 1));
}

int64_t Sampler::next() {
  const int64_t idx = index_at(state_.position);
  state_.position += options_.world;
  return idx;
}

void Sampler::restore(const SamplerState& state) {
  HYFT_CHECK(state.position >= 0, "sampler position ", state.position, " is negative");
  state_ = state;
}

std::vector<RankDraws> reshard_draws(const std::vector<RankDraws>& saved, int64_t world,
                                     const std::function<int64_t(int64_t)>& index_at) {
  HYFT_CHECK(!saved.empty() && world >= 1, "bad sampler state: ", saved.size(), " ranks saved");
  const int64_t old_world = int64_t(saved.size());
  if (old_world == world) return saved;
  int64_t first = saved[0].position, furthest = saved[0].position;
  for (const auto& r : saved) first = std::min(first, r.position), furthest = std::max(furthest, r.position);
  // In step: no rank has consumed a position at or past the lowest next position.
  bool in_step = true;
  for (const auto& r : saved) in_step = in_step && r.position - old_world < first;
  const int64_t base = in_step ? first : furthest;
  std::vector<int64_t> waiting;
  for (const auto& r : saved) waiting.insert(waiting.end(), r.pending.begin(), r.pending.end());
  if (!in_step)
    for (const auto& r : saved)
      for (int64_t p = r.position; p < furthest; p += old_world) waiting.push_back(index_at(p));
  std::vector<RankDraws> out(static_cast<size_t>(world));
  for (int64_t k = 0; k < world; ++k) out[size_t(k)].position = base + k;
  for (size_t i = 0; i < waiting.size(); ++i) out[i % size_t(world)].pending.push_back(waiting[i]);
  return out;
}

}  // namespace hyft::data
