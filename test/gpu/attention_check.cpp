// hyft_attention_check: the flash path of attention (attention/flash_attention.h)
// against the oracle, and its speed.
//
//   hyft_attention_check --check [--cases N]
//     random cases (T not a multiple of any tile, W 1..T, r 0..0.5, 1-5 documents
//     per row, GQA 4:1 and none, head dim 64 and 128, bf16 and fp16): the output and
//     the q, k, v gradients against attention_reference in float32 on the same
//     rounded inputs with reference_mask (may_attend, pair by pair). Bounds, as
//     max |fast - ref| / max |ref| per tensor: bf16 3e-2, fp16 6e-3 (the kernels
//     round P and dS to the input dtype). Exits 1 on any failure, 77 without CUDA.
//   hyft_attention_check --bench [--seqs 4096,16384] [--heads 16] [--dim 128]
//                        [--window 512] [--global-ratio 0.1] [--reps 10]
//     recipes/attention_bench.h (also `hyft bench --attention`): forward + backward
//     milliseconds, one JSON line per (path, T), the fields of bench/peers/attention_bench.py.
#include "attention/backend.h"
#include "attention/flash_attention.h"
#include "attention/hybrid_attention.h"
#include "recipes/attention_bench.h"

#include <ATen/ATen.h>
#include <torch/cuda.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace hyft::attention;

namespace {

// Positions and documents of B rows of T tokens, each row split into `docs` documents.
Layout random_layout(int64_t B, int64_t T, int docs, std::mt19937& rng) {
  at::Tensor pos = at::empty({B, T}, at::kLong), doc = at::empty({B, T}, at::kLong);
  auto p = pos.accessor<int64_t, 2>();
  auto d = doc.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> cuts = {0, T};
    for (int i = 1; i < docs && T > 1; ++i) cuts.push_back(1 + int64_t(rng() % uint64_t(T - 1)));
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    for (size_t c = 0; c + 1 < cuts.size(); ++c)
      for (int64_t t = cuts[c]; t < cuts[c + 1]; ++t) {
        p[b][t] = t - cuts[c];
        d[b][t] = int64_t(c);
      }
  }
  return {pos.to(at::kCUDA), doc.to(at::kCUDA)};
}

// max |a - ref| / max |ref|; the scale floored at 0.1 (inputs are N(0, 1)), so that a
// gradient that is exactly zero in the reference (one token: softmax is 1) compares
// by its rounding, not by 0/0.
double rel_err(const at::Tensor& a, const at::Tensor& ref) {
  const double scale = std::max(0.1, ref.abs().max().item<double>());
  return (a.to(at::kFloat) - ref).abs().max().item<double>() / scale;
}

int check(int cases) {
  std::mt19937 rng(1234);
  int failures = 0;
  const int64_t Ts[] = {1, 37, 100, 257, 600};
  const double ratios[] = {0.0, 0.05, 0.1, 0.25, 0.5};
  for (int c = 0; c < cases; ++c) {
    const int64_t T = Ts[c % 5], B = 1 + c % 2, D = (c / 2) % 2 ? 128 : 64;
    const bool gqa = (c / 4) % 2, fp16 = (c / 8) % 2;
    const int64_t H = 4, Hkv = gqa ? 1 : 4;
    HybridSettings rule;
    rule.window_size = 1 + int64_t(rng() % uint64_t(T));
    rule.global_ratio = ratios[(c / 3) % 5];
    const int docs = 1 + c % 5;
    const Layout layout = random_layout(B, T, docs, rng);
    const auto dt = fp16 ? at::kHalf : at::kBFloat16;
    const auto opts = at::TensorOptions().device(at::kCUDA).dtype(dt);
    at::Tensor q = at::randn({B, H, T, D}, opts), k = at::randn({B, Hkv, T, D}, opts),
               v = at::randn({B, Hkv, T, D}, opts), g = at::randn({B, H, T, D}, opts);

    AttentionMask mask = make_attention_mask(rule, layout, /*dense=*/false);
    mask.causal = false;  // documents or a rule: the fast path's case (a plain causal row goes to SDPA)
    // (fast_attention itself, also where the backend would send short rows with global
    // tokens to SDPA: the path must be right at every length)
    at::Tensor qf = q.detach().requires_grad_(true), kf = k.detach().requires_grad_(true),
               vf = v.detach().requires_grad_(true);
    at::Tensor out = fast_attention(qf, kf, vf, mask);
    out.backward(g);

    AttentionMask ref_mask = mask;
    ref_mask.allowed = reference_mask(rule, layout);
    ref_mask.plan.reset();
    at::Tensor qr = q.to(at::kFloat).requires_grad_(true), kr = k.to(at::kFloat).requires_grad_(true),
               vr = v.to(at::kFloat).requires_grad_(true);
    at::Tensor ref = attention_reference(qr, kr, vr, ref_mask);
    ref.backward(g.to(at::kFloat));

    const double bound = fp16 ? 6e-3 : 3e-2;
    const double e_out = rel_err(out, ref), e_q = rel_err(qf.grad(), qr.grad()), e_k = rel_err(kf.grad(), kr.grad()),
                 e_v = rel_err(vf.grad(), vr.grad());
    const bool ok = e_out <= bound && e_q <= bound && e_k <= bound && e_v <= bound;
    std::printf("%s case %2d: B%lld T%-4lld H%lld/%lld D%-3lld %s W%-4lld r%.2f docs %d | rel err out %.2e dq %.2e "
                "dk %.2e dv %.2e (bound %.0e)\n",
                ok ? "ok  " : "FAIL", c, (long long)B, (long long)T, (long long)H, (long long)Hkv, (long long)D,
                fp16 ? "fp16" : "bf16", (long long)rule.window_size, rule.global_ratio, docs, e_out, e_q, e_k, e_v,
                bound);
    failures += !ok;
  }
  std::printf("attention check: %d cases, %d failures\n", cases, failures);
  return failures ? 1 : 0;
}

int bench(const hyft::recipes::AttentionBenchOptions& o) {
  for (const auto& line : hyft::recipes::run_attention_bench(o)) std::printf("%s\n", line.dump().c_str());
  return 0;
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  size_t at = 0;
  while (at <= s.size()) {
    const size_t comma = s.find(',', at);
    out.push_back(std::stoll(s.substr(at, comma - at)));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  int cases = 60;
  hyft::recipes::AttentionBenchOptions b;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--cases") cases = std::stoi(v);
    else if (k == "--seqs") b.seqs = parse_list(v);
    else if (k == "--heads") b.heads = std::stoll(v);
    else if (k == "--dim") b.dim = std::stoll(v);
    else if (k == "--window") b.window = std::stoll(v);
    else if (k == "--global-ratio") b.global_ratio = std::stod(v);
    else if (k == "--reps") b.reps = std::stoi(v);
  }
  if (mode != "--check" && mode != "--bench") {
    std::fprintf(stderr, "usage: hyft_attention_check --check [--cases N] | --bench [--seqs ...]\n");
    return 2;
  }
  if (!torch::cuda::is_available()) {
    std::printf("no CUDA device: the flash path is not checked here (scripts/gpu_check.sh runs it)\n");
    return 77;
  }
  at::manual_seed(0);
  return mode == "--check" ? check(cases) : bench(b);
}
