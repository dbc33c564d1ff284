// Hybrid attention (docs/ARCHITECTURE.md): the masks against the formula by brute force, packed
// documents, and the SDPA fast path against the explicit-mask reference.
#include "support/catch.h"

#include "attention/backend.h"
#include "attention/hybrid_attention.h"

#include <ATen/ATen.h>

#include <cmath>
#include <random>

using namespace hyft::attention;

namespace {

// The rule written out literally, independently of may_attend: G = {t : t mod s = 0},
// s = round(1/r) with halves rounded up.
bool spec_rule(int64_t W, double r, int64_t i, int64_t j) {
  bool in_g_i = false, in_g_j = false;
  if (r > 0) {
    const int64_t s = static_cast<int64_t>(std::llround(1.0 / r));
    in_g_i = i % s == 0;
    in_g_j = j % s == 0;
  }
  return j <= i && (W == 0 || i - j < W || in_g_j || in_g_i);
}

const double kRatios[] = {0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.9};

}  // namespace

TEST_CASE("the hybrid mask equals the rule's formula over many (T, W, r)", "[attention]") {
  int64_t checked = 0;
  for (int64_t T : {1, 2, 3, 5, 8, 13, 21, 34}) {
    for (int64_t W = 0; W <= T + 1; ++W) {
      for (double r : kRatios) {
        HybridSettings s{W, r};
        Layout layout{at::arange(T, at::kLong).unsqueeze(0).expand({2, T}), {}};
        at::Tensor ref = reference_mask(s, layout);
        at::Tensor fast = hybrid_mask(s, layout);
        auto m = ref.accessor<bool, 4>();
        for (int64_t b = 0; b < 2; ++b)
          for (int64_t i = 0; i < T; ++i)
            for (int64_t j = 0; j < T; ++j) {
              if (m[b][0][i][j] != spec_rule(W, r, i, j)) {
                INFO("T=" << T << " W=" << W << " r=" << r << " i=" << i << " j=" << j);
                REQUIRE(m[b][0][i][j] == spec_rule(W, r, i, j));
              }
              ++checked;
            }
        INFO("T=" << T << " W=" << W << " r=" << r);
        REQUIRE(at::equal(fast, ref));
        // Every query sees itself: no row is fully masked.
        REQUIRE(ref.diagonal(0, 2, 3).all().item<bool>());
      }
    }
  }
  REQUIRE(checked > 100000);
}

TEST_CASE("global stride is round(1/r) and settings are validated", "[attention]") {
  REQUIRE(HybridSettings{8, 0.0}.global_stride() == 0);
  REQUIRE(HybridSettings{8, 0.1}.global_stride() == 10);
  REQUIRE(HybridSettings{8, 0.3}.global_stride() == 3);
  REQUIRE(HybridSettings{8, 0.4}.global_stride() == 3);  // 2.5 rounds up
  REQUIRE_THROWS(validate(HybridSettings{-1, 0.0}, "--window-size"));
  REQUIRE_THROWS(validate(HybridSettings{4, 1.0}, "--global-ratio"));
  REQUIRE_NOTHROW(validate(HybridSettings{4, 0.2}, "x"));
}

TEST_CASE("packed documents: no query sees another document, positions restart", "[attention]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t T = 1 + rng() % 40;
    at::Tensor doc = at::zeros({2, T}, at::kLong), pos = at::zeros({2, T}, at::kLong);
    for (int64_t b = 0; b < 2; ++b) {
      int64_t d = 0, p = 0;
      for (int64_t t = 0; t < T; ++t) {
        if (t > 0 && rng() % 5 == 0) ++d, p = 0;
        doc[b][t] = d;
        pos[b][t] = p++;
      }
    }
    const HybridSettings s{int64_t(rng() % 6), kRatios[rng() % 10]};
    const Layout layout{pos, doc};
    at::Tensor ref = reference_mask(s, layout);
    REQUIRE(at::equal(hybrid_mask(s, layout), ref));
    REQUIRE_FALSE(make_attention_mask(s, layout).causal);
    auto m = ref.accessor<bool, 4>();
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j < T; ++j) {
          const bool same = doc[b][i].item<int64_t>() == doc[b][j].item<int64_t>();
          const bool expect = same && spec_rule(s.window_size, s.global_ratio, pos[b][i].item<int64_t>(),
                                                pos[b][j].item<int64_t>());
          REQUIRE(m[b][0][i][j] == expect);
        }
  }
}

TEST_CASE("plain causal is chosen when the rule reduces to it", "[attention]") {
  const Layout layout{at::arange(16, at::kLong).unsqueeze(0), {}};
  REQUIRE(make_attention_mask({0, 0.3}, layout).causal);   // W = 0: r has no effect
  REQUIRE(make_attention_mask({16, 0.0}, layout).causal);  // W >= T
  REQUIRE_FALSE(make_attention_mask({15, 0.0}, layout).causal);
  REQUIRE_FALSE(make_attention_mask({4, 0.25}, layout).causal);
}

TEST_CASE("SDPA fast path equals the explicit-mask reference", "[attention]") {
  at::manual_seed(3);
  for (int64_t Hkv : {4, 2, 1}) {
    for (const HybridSettings s : {HybridSettings{0, 0.0}, HybridSettings{5, 0.0}, HybridSettings{4, 0.25},
                                   HybridSettings{3, 0.5}}) {
      const int64_t B = 2, H = 4, T = 19, Dh = 8;
      at::Tensor q = at::randn({B, H, T, Dh}), k = at::randn({B, Hkv, T, Dh}), v = at::randn({B, Hkv, T, Dh});
      const Layout layout{at::arange(T, at::kLong).unsqueeze(0).expand({B, T}), {}};
      const AttentionMask mask = make_attention_mask(s, layout);
      const double diff = (sdpa_backend().forward(q, k, v, mask) - reference_backend().forward(q, k, v, mask))
                              .abs().max().item<double>();
      INFO("Hkv=" << Hkv << " W=" << s.window_size << " r=" << s.global_ratio << " max diff " << diff);
      REQUIRE(diff < 1e-5);
      // The explicit mask and is_causal agree where both apply.
      if (mask.causal) {
        AttentionMask explicit_mask = mask;
        explicit_mask.causal = false;
        explicit_mask.allowed = hybrid_mask(s, layout);
        REQUIRE((attention(q, k, v, explicit_mask) - attention(q, k, v, mask)).abs().max().item<double>() < 1e-5);
      }
    }
  }
}

TEST_CASE("the mask keeps its rule and layout; the dense form only when asked", "[attention]") {
  const int64_t B = 2, T = 12;
  const Layout layout{at::arange(T, at::kLong).unsqueeze(0).expand({B, T}),
                      at::cat({at::zeros({B, 5}, at::kLong), at::ones({B, T - 5}, at::kLong)}, 1)};
  const HybridSettings s{4, 0.25};
  const AttentionMask dense = make_attention_mask(s, layout);
  const AttentionMask lean = make_attention_mask(s, layout, /*dense=*/false);
  REQUIRE_FALSE(dense.causal);
  REQUIRE_FALSE(lean.causal);
  REQUIRE(dense.allowed.defined());
  REQUIRE_FALSE(lean.allowed.defined());
  REQUIRE(lean.rule.window_size == 4);
  REQUIRE(lean.rule.global_ratio == 0.25);
  REQUIRE(at::equal(lean.layout.document_ids, layout.document_ids));
  // A cached step keeps where its queries start.
  const AttentionMask cached = make_cached_attention_mask(s, 7, 1, at::kCPU, /*dense=*/false);
  REQUIRE(cached.q_start == 7);
  REQUIRE_FALSE(cached.allowed.defined());
  REQUIRE(make_cached_attention_mask(s, 7, 1, at::kCPU).allowed.defined());
}

TEST_CASE("the flash backend off its path (CPU) equals the reference, building the dense mask once", "[attention]") {
  // On the CPU (and for fp32) the flash backend falls back to SDPA with the dense
  // mask, made on first need and shared by the layers of one forward pass.
  at::manual_seed(3);
  const int64_t B = 2, T = 30, H = 4, Hkv = 2, D = 8;
  const Layout layout{at::cat({at::arange(11, at::kLong), at::arange(T - 11, at::kLong)}).unsqueeze(0).expand({B, T}),
                      at::cat({at::zeros({11}, at::kLong), at::ones({T - 11}, at::kLong)}).unsqueeze(0).expand({B, T})};
  const HybridSettings s{5, 0.25};
  const AttentionMask mask = make_attention_mask(s, layout, flash_backend().needs_dense_mask());
  REQUIRE_FALSE(mask.allowed.defined());
  const at::Tensor q = at::randn({B, H, T, D}), k = at::randn({B, Hkv, T, D}), v = at::randn({B, Hkv, T, D});
  const at::Tensor out = flash_backend().forward(q, k, v, mask);
  REQUIRE(mask.lazy_allowed.defined());
  const void* built = mask.lazy_allowed.data_ptr();
  const at::Tensor again = flash_backend().forward(q, k, v, mask);  // the next layer: the same mask
  REQUIRE(mask.lazy_allowed.data_ptr() == built);
  AttentionMask ref = mask;
  ref.allowed = reference_mask(s, layout);
  const double d = (out - attention_reference(q, k, v, ref)).abs().max().item<double>();
  std::printf("flash backend (CPU fallback) vs reference: max |diff| %.3g\n", d);
  REQUIRE(d < 1e-5);
  REQUIRE(at::equal(out, again));
  REQUIRE(&default_backend(at::kCPU) == &sdpa_backend());
  REQUIRE(&default_backend(at::Device(at::kCUDA, 0)) == &flash_backend());
}
