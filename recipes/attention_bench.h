// The attention microbenchmark behind `hyft bench --attention`: forward + backward
// milliseconds of hyft's attention paths on random q, k, v (bf16, B1, H heads of D),
// one JSON object per (path, T) with the fields of bench/peers/attention_bench.py:
//   hyft_flash      the flash path with the hybrid rule (window + global ratio)
//   hyft_window     the flash path with the window alone
//   hyft_sdpa_mask  SDPA with the dense mask (the path short hybrid rows take)
// The mask, and the plan the flash path derives from it, is made once per T, as a
// training step makes it once for every layer (and as the peer builds its block mask).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace hyft::recipes {

struct AttentionBenchOptions {
  std::vector<int64_t> seqs = {4096, 16384};
  int64_t heads = 16, dim = 128, window = 512;
  double global_ratio = 0.1;
  int reps = 10;
};

// Needs a CUDA device (a UserError otherwise). A path that fails (out of memory)
// gives {"peer", "T", "error"}.
std::vector<nlohmann::ordered_json> run_attention_bench(const AttentionBenchOptions& options);

}  // namespace hyft::recipes
