// The order examples are drawn in: uniform (a fresh shuffle each epoch),
// weighted (probability proportional to `weight`) and balanced (1 / count(label)^p),
// the last two with replacement, an epoch being as many draws as there are
// examples. Deterministic for a seed, resumable at any step, and sharded across
// ranks: rank k takes the draws k, k + world, k + 2 world, ... of each epoch.
#pragma once

#include "data/example.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hyft::data {

enum class SamplingKind { Uniform, Weighted, Balanced };
SamplingKind parse_sampling(const std::string& text, const std::string& flag);
const char* sampling_name(SamplingKind kind);

struct SamplerOptions {
  SamplingKind kind = SamplingKind::Uniform;
  double balance_power = 1.0;  // p in [0, 1]; 0 gives uniform probabilities
  uint64_t seed = 0;
  int64_t rank = 0, world = 1;
};

struct SamplerState {
  int64_t epoch = 0;
  int64_t offset = 0;  // draws this rank has taken in the epoch
};

class Sampler {
 public:
  Sampler(const std::vector<Example>& examples, const SamplerOptions& options);

  int64_t next();                   // the index of the next example
  int64_t epoch_length() const;     // draws of this rank per epoch
  SamplerState state() const { return state_; }
  void restore(const SamplerState& state);

  // The probability of drawing each example (uniform: 1/N).
  const std::vector<double>& probabilities() const { return probs_; }

 private:
  void build_epoch();
  SamplerOptions options_;
  std::vector<double> probs_, cumulative_;
  std::vector<size_t> epoch_order_;  // the whole epoch; this rank reads its share
  int64_t built_epoch_ = -1;
  SamplerState state_;
};

// Per-example sampling probabilities of a kind (balanced needs every example to
// carry a label: a missing one is a UserError naming its line).
std::vector<double> sampling_probabilities(const std::vector<Example>& examples, SamplingKind kind,
                                           double balance_power);

// label -> (count, probability that a draw has this label) under the probabilities.
std::map<std::string, std::pair<int64_t, double>> label_distribution(const std::vector<Example>& examples,
                                                                     const std::vector<double>& probabilities);

}  // namespace hyft::data
