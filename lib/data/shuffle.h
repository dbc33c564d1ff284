// Deterministic randomness for data order: the same seed gives the same order on
// every platform and standard library (std::shuffle and std::uniform_*_distribution
// are implementation-defined, so they are not used).
#pragma once

#include <cstdint>
#include <vector>

namespace hyft::data {

// splitmix64-seeded xoshiro256** generator; `stream` separates independent uses.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream);
  uint64_t next();
  uint64_t below(uint64_t n);  // uniform in [0, n), unbiased
  double uniform();            // uniform in [0, 1), 53 bits

 private:
  uint64_t s_[4];
};

// A uniformly random permutation of 0..n-1 (Fisher-Yates).
std::vector<size_t> permutation(size_t n, uint64_t seed, uint64_t stream);

}  // namespace hyft::data
