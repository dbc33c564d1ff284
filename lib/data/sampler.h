// The order examples are drawn in: uniform (a fresh shuffle each epoch),
// weighted (probability proportional to `weight`) and balanced (1 / count(label)^p),
// the last two with replacement, an epoch being as many draws as there are
// examples. Deterministic for a seed and resumable at any step. The epochs follow
// one another as one global sequence of draws, the same whatever the number of
// ranks: rank k of `world` takes its positions k, k + world, k + 2 world, ..., so
// `world` ranks drawing b each take the draws one rank drawing world * b takes.
#pragma once

#include "data/example.h"

#include <cstdint>
#include <functional>
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
  int64_t position = 0;  // where this rank's next draw is in the global sequence
};

class Sampler {
 public:
  Sampler(const std::vector<Example>& examples, const SamplerOptions& options);

  int64_t next();                   // the index of the next example
  int64_t epoch_length() const;     // draws of this rank per epoch (rounded up)
  double epoch() const;             // epochs drawn so far, fractional
  SamplerState state() const { return state_; }
  void restore(const SamplerState& state);
  // The example at a global position (a resume across world sizes re-queues the
  // positions other ranks had not reached).
  int64_t index_at(int64_t position);

  // The probability of drawing each example (uniform: 1/N).
  const std::vector<double>& probabilities() const { return probs_; }

 private:
  void build_epoch(int64_t epoch);
  SamplerOptions options_;
  std::vector<double> probs_, cumulative_;
  std::vector<size_t> epoch_order_;  // the whole epoch; this rank reads its share
  int64_t built_epoch_ = -1;
  SamplerState state_;  // starts at position `rank`
};

// One rank's place in the draws: its next position and the examples it drew but
// has not placed yet (packing).
struct RankDraws {
  int64_t position = 0;
  std::vector<int64_t> pending;
};

// The draws of a run saved by saved.size() ranks, continued by `world` ranks:
// nothing drawn twice, nothing skipped. Ranks that drew in step (fixed batches)
// continue the global sequence where they stopped; ranks that drew unequal
// counts (packing) continue after the furthest one, and the positions the
// others had not reached (their examples from `index_at`) wait with the pending
// examples, dealt round-robin to the new ranks. Same count: `saved` unchanged.
std::vector<RankDraws> reshard_draws(const std::vector<RankDraws>& saved, int64_t world,
                                     const std::function<int64_t(int64_t)>& index_at);

// Per-example sampling probabilities of a kind (balanced needs every example to
// carry a label: a missing one is a UserError naming its line).
std::vector<double> sampling_probabilities(const std::vector<Example>& examples, SamplingKind kind,
                                           double balance_power);

// label -> (count, probability that a draw has this label) under the probabilities.
std::map<std::string, std::pair<int64_t, double>> label_distribution(const std::vector<Example>& examples,
                                                                     const std::vector<double>& probabilities);

}  // namespace hyft::data
