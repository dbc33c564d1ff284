#include "recipes/attention_bench.h"

#include "attention/flash_attention.h"
#include "attention/hybrid_attention.h"
#include "common/error.h"

#include <ATen/ATen.h>
#include <torch/cuda.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>

namespace hyft::recipes {

namespace {

double time_ms(const std::function<void()>& fn, int reps) {
  for (int i = 0; i < 3; ++i) fn();
  torch::cuda::synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) fn();
  torch::cuda::synchronize();
  return 1000.0 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
}

}  // namespace

std::vector<nlohmann::ordered_json> run_attention_bench(const AttentionBenchOptions& o) {
  HYFT_CHECK(torch::cuda::is_available(), "hyft bench --attention times the CUDA attention paths; this machine has "
             "no CUDA device");
  HYFT_CHECK(o.heads > 0 && o.dim > 0 && o.dim % 8 == 0 && o.window > 0 && o.reps > 0 && !o.seqs.empty(),
             "--heads, --dim (a multiple of 8), --window-size, --steps and --seq must be positive");
  std::vector<nlohmann::ordered_json> out;
  const int64_t H = o.heads, D = o.dim;
  for (const int64_t T : o.seqs) {
    const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
    at::Tensor q = at::randn({1, H, T, D}, opts).requires_grad_(true);
    at::Tensor k = at::randn({1, H, T, D}, opts).requires_grad_(true);
    at::Tensor v = at::randn({1, H, T, D}, opts).requires_grad_(true);
    const at::Tensor g = at::randn({1, H, T, D}, opts);
    const attention::Layout layout{at::arange(T, at::TensorOptions().device(at::kCUDA).dtype(at::kLong)).unsqueeze(0), {}};
    for (const char* peer : {"hyft_flash", "hyft_window", "hyft_sdpa_mask"}) {
      attention::HybridSettings rule;
      rule.window_size = o.window;
      rule.global_ratio = std::strcmp(peer, "hyft_window") == 0 ? 0.0 : o.global_ratio;
      const bool dense = std::strcmp(peer, "hyft_sdpa_mask") == 0;
      try {
        const attention::AttentionMask mask = attention::make_attention_mask(rule, layout, dense);
        const double ms = time_ms([&] {
          at::Tensor y = dense ? attention::attention(q, k, v, mask) : attention::fast_attention(q, k, v, mask);
          y.backward(g);
        }, o.reps);
        out.push_back({{"peer", peer}, {"T", T}, {"heads", H}, {"dim", D}, {"window", o.window},
                       {"global_ratio", rule.global_ratio}, {"fwd_bwd_ms", std::round(ms * 1000.0) / 1000.0}});
      } catch (const std::exception& e) {
        out.push_back({{"peer", peer}, {"T", T}, {"error", std::string(e.what()).substr(0, 120)}});
      }
    }
  }
  return out;
}

}  // namespace hyft::recipes
