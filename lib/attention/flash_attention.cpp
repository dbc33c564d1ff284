// The flash path of attention/backend.h; parts A, B and C are explained in
// flash_attention.h. Shapes: B rows, T tokens, H query heads, Hkv key/value heads,
// D head dim; everything runs in the flash kernels' varlen layout, (B*T, H, D) for
// tokens and (H, B*T) for log-sum-exps.
//
// How B and C become plain causal flash problems. In a document of length L with
// stride s and window W:
//  B: a query at position p >= W has phase f = (p - W) mod s and rank n = (p - W) div s;
//     it may see the global keys m*s with m <= n. So the queries of one phase, in rank
//     order, against the first N_f global keys, are causal with Lq = Lk = N_f.
//  C: the global query m*s may see key j <= m*s. Split the keys by phase g = j mod s
//     (rank n = j div s): phase 0 holds the global keys themselves, seen for n <= m
//     (causal, Lq = Lk = G); a phase g > 0 is seen for n <= m - 1, which is causal
//     with the bottom-right alignment of Lq = G queries over Lk = G - 1 keys. The s
//     partial results of each global query merge by log-sum-exp.
// The index lists are built once per batch on the CPU (O(T)) and shared by every layer.
#include "attention/flash_attention.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

namespace hyft::attention {

// A set of varlen sequences over gathered tokens: query and key token indices into
// the B*T tokens, and the cu_seqlens of each side.
struct GatheredProblem {
  at::Tensor q_tokens, k_tokens;  // int64 on the device
  at::Tensor cu_q, cu_k;          // (n + 1,) int32
  int64_t max_q = 0, max_k = 0;
  bool empty() const { return !q_tokens.defined() || q_tokens.numel() == 0; }
};

// What every layer of one forward pass shares.
struct FastAttentionPlan {
  at::Tensor cu_seqlens;  // (documents + 1,) int32: where each document starts in the B*T tokens
  int64_t max_len = 0;    // the longest document
  // With global tokens:
  GatheredProblem band_globals;   // B
  GatheredProblem global_rows;    // C, s rows per global token (one per key phase)
  at::Tensor global_tokens;       // (NG,) int64: every global token
  at::Tensor global_slot;         // (rows of C,) int64: each C row's index into global_tokens
  at::Tensor not_global;          // (B*T, 1, 1) bool: rows that A and B compute
};

namespace {

// The plan through the autograd context (a capsule holds a CustomClassHolder).
struct PlanHolder : torch::CustomClassHolder {
  std::shared_ptr<FastAttentionPlan> plan;
};

struct SequenceLists {  // GatheredProblem under construction, on the CPU
  std::vector<int64_t> q, k;
  std::vector<int32_t> cu_q{0}, cu_k{0};
  int64_t max_q = 0, max_k = 0;
  void close() {
    cu_q.push_back(int32_t(q.size()));
    cu_k.push_back(int32_t(k.size()));
    max_q = std::max<int64_t>(max_q, cu_q.back() - cu_q[cu_q.size() - 2]);
    max_k = std::max<int64_t>(max_k, cu_k.back() - cu_k[cu_k.size() - 2]);
  }
  GatheredProblem upload(const at::Device& device) const {
    GatheredProblem g;
    const auto i64 = at::TensorOptions().dtype(at::kLong), i32 = at::TensorOptions().dtype(at::kInt);
    g.q_tokens = at::tensor(q, i64).to(device);
    g.k_tokens = at::tensor(k, i64).to(device);
    g.cu_q = at::tensor(std::vector<int32_t>(cu_q), i32).to(device);
    g.cu_k = at::tensor(std::vector<int32_t>(cu_k), i32).to(device);
    g.max_q = max_q;
    g.max_k = max_k;
    return g;
  }
};

// `window`: the band, 0 when the rule is plain causal over these rows (no globals then).
std::shared_ptr<FastAttentionPlan> make_plan(const AttentionMask& mask, int64_t B, int64_t T, int64_t window,
                                            const at::Device& device) {
  auto plan = std::make_shared<FastAttentionPlan>();
  // Documents: a new one at each row's first token and wherever the document id changes.
  const at::Tensor doc = mask.layout.document_ids.defined()
                             ? mask.layout.document_ids.to(at::kCPU, at::kLong).contiguous()
                             : at::zeros({B, T}, at::kLong);
  const int64_t* d = doc.data_ptr<int64_t>();
  std::vector<int32_t> starts;
  for (int64_t t = 0; t < B * T; ++t)
    if (t % T == 0 || d[t] != d[t - 1]) starts.push_back(int32_t(t));
  starts.push_back(int32_t(B * T));
  for (size_t i = 0; i + 1 < starts.size(); ++i) plan->max_len = std::max<int64_t>(plan->max_len, starts[i + 1] - starts[i]);
  plan->cu_seqlens = at::tensor(starts, at::TensorOptions().dtype(at::kInt)).to(device);

  const int64_t s = mask.rule.global_stride();
  if (s == 0 || window == 0) return plan;
  SequenceLists band, rows;
  std::vector<int64_t> globals, slot;
  std::vector<uint8_t> not_global(size_t(B * T), 1);
  for (size_t i = 0; i + 1 < starts.size(); ++i) {
    const int64_t start = starts[i], L = starts[i + 1] - starts[i], G = (L + s - 1) / s;
    const int64_t first_slot = int64_t(globals.size());
    for (int64_t m = 0; m < G; ++m) {
      globals.push_back(start + m * s);
      not_global[size_t(start + m * s)] = 0;
    }
    // B: per query phase f, N_f queries W + f + n s over the global keys m < N_f.
    for (int64_t f = 0; f < s; ++f) {
      const int64_t N = L - window - f > 0 ? (L - window - f + s - 1) / s : 0;
      if (N == 0) continue;
      for (int64_t n = 0; n < N; ++n) {
        band.q.push_back(start + window + f + n * s);
        band.k.push_back(start + n * s);
      }
      band.close();
    }
    // C: the G global queries over each key phase g (phase 0: G keys; g > 0: G - 1).
    for (int64_t g = 0; g < s; ++g) {
      const int64_t K = g == 0 ? G : G - 1;
      if (K <= 0) continue;
      for (int64_t m = 0; m < G; ++m) {
        rows.q.push_back(start + m * s);
        slot.push_back(first_slot + m);
      }
      for (int64_t n = 0; n < K; ++n) rows.k.push_back(start + g + n * s);
      rows.close();
    }
  }
  plan->band_globals = band.upload(device);
  plan->global_rows = rows.upload(device);
  plan->global_tokens = at::tensor(globals, at::TensorOptions().dtype(at::kLong)).to(device);
  plan->global_slot = at::tensor(slot, at::TensorOptions().dtype(at::kLong)).to(device);
  plan->not_global = at::tensor(std::vector<uint8_t>(not_global), at::TensorOptions().dtype(at::kByte))
                         .to(device)
                         .to(at::kBool)
                         .view({B * T, 1, 1});
  return plan;
}

// (B, Hx, T, D) <-> (B*T, Hx, D)
at::Tensor to_varlen(const at::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0) * x.size(2), x.size(1), x.size(3)}).contiguous();
}
at::Tensor from_varlen(const at::Tensor& y, int64_t B, int64_t T) {
  return y.view({B, T, y.size(1), y.size(2)}).transpose(1, 2);
}

// Flash's log-sum-exp of a row that saw no key is +inf; as a part to merge it is -inf.
at::Tensor empty_rows_to_minus_inf(const at::Tensor& lse) {
  return at::where(at::isinf(lse), at::full({}, -std::numeric_limits<float>::infinity(), lse.options()), lse);
}

struct Flash {
  at::Tensor out, lse, rng, unused;
};

// Causal flash attention over varlen sequences: `window` > 0 limits it to the band.
Flash flash_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cu_q,
                    const at::Tensor& cu_k, int64_t max_q, int64_t max_k, double scale, int64_t window) {
  std::optional<int64_t> left, right;
  if (window > 0) left = window - 1, right = 0;
  auto [out, lse, rng, unused, debug] = at::_flash_attention_forward(
      q, k, v, cu_q, cu_k, max_q, max_k, 0.0, /*is_causal=*/true, /*return_debug_mask=*/false, scale, left, right);
  (void)debug;
  return {out, lse, rng, unused};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> flash_backward(const at::Tensor& dout, const at::Tensor& q,
                                                              const at::Tensor& k, const at::Tensor& v,
                                                              const at::Tensor& out, const at::Tensor& lse,
                                                              const at::Tensor& cu_q, const at::Tensor& cu_k,
                                                              int64_t max_q, int64_t max_k, const at::Tensor& rng,
                                                              const at::Tensor& unused, double scale, int64_t window) {
  std::optional<int64_t> left, right;
  if (window > 0) left = window - 1, right = 0;
  return at::_flash_attention_backward(dout.contiguous(), q, k, v, out.contiguous(), lse.contiguous(), cu_q, cu_k,
                                       max_q, max_k, 0.0, /*is_causal=*/true, rng, unused, scale, left, right);
}

struct FastAttentionFunction : torch::autograd::Function<FastAttentionFunction> {
  // q (B, H, T, D), k and v (B, Hkv, T, D) -> (B, H, T, D)
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor q, at::Tensor k, at::Tensor v,
                            c10::intrusive_ptr<PlanHolder> holder, int64_t window, double scale) {
    const int64_t B = q.size(0), T = q.size(2);
    const FastAttentionPlan& p = *holder->plan;
    const at::Tensor qv = to_varlen(q), kv = to_varlen(k), vv = to_varlen(v);  // (B*T, H or Hkv, D)
    // A: the band (or the whole causal document).
    Flash a = flash_forward(qv, kv, vv, p.cu_seqlens, p.cu_seqlens, p.max_len, p.max_len, scale, window);
    at::Tensor out = a.out, lse = a.lse;  // (B*T, H, D), (H, B*T) float32
    std::vector<at::Tensor> saved = {qv, kv, vv};  // the varlen copies: the backward needs no new ones
    if (!p.global_tokens.defined()) {
      saved.insert(saved.end(), {out, lse, a.rng, a.unused});
    } else {
      at::Tensor o = out.to(at::kFloat);
      // B: global keys outside the band, merged into A's rows by log-sum-exp.
      const GatheredProblem& gb = p.band_globals;
      Flash b;
      if (!gb.empty()) {
        b = flash_forward(qv.index_select(0, gb.q_tokens), kv.index_select(0, gb.k_tokens),
                          vv.index_select(0, gb.k_tokens), gb.cu_q, gb.cu_k, gb.max_q, gb.max_k, scale, 0);
        const at::Tensor la = lse.index_select(1, gb.q_tokens), lb = empty_rows_to_minus_inf(b.lse);
        const at::Tensor merged = at::logaddexp(la, lb);  // (H, rows)
        const at::Tensor wa = at::exp(la - merged).t().unsqueeze(-1), wb = at::exp(lb - merged).t().unsqueeze(-1);
        o.index_copy_(0, gb.q_tokens, o.index_select(0, gb.q_tokens) * wa + b.out.to(at::kFloat) * wb);
        lse = lse.index_copy(1, gb.q_tokens, merged);
      }
      // C: global queries over each key phase; the phases merge by log-sum-exp, and
      // the result replaces A's and B's rows for those queries.
      const GatheredProblem& gc = p.global_rows;
      Flash c = flash_forward(qv.index_select(0, gc.q_tokens), kv.index_select(0, gc.k_tokens),
                              vv.index_select(0, gc.k_tokens), gc.cu_q, gc.cu_k, gc.max_q, gc.max_k, scale, 0);
      const at::Tensor lse_c_rows = empty_rows_to_minus_inf(c.lse);  // (H, rows)
      const int64_t NG = p.global_tokens.numel(), H = q.size(1);
      const at::Tensor slot = p.global_slot.unsqueeze(0).expand({H, p.global_slot.numel()});
      const at::Tensor top = at::full({H, NG}, -std::numeric_limits<float>::infinity(), lse.options())
                                 .scatter_reduce(1, slot, lse_c_rows, "amax");
      const at::Tensor weight_rows = at::exp(lse_c_rows - top.gather(1, slot));  // (H, rows)
      const at::Tensor lse_c = top + at::log(at::zeros({H, NG}, lse.options()).index_add(1, p.global_slot, weight_rows));
      const at::Tensor w = at::exp(lse_c_rows - lse_c.gather(1, slot)).t().unsqueeze(-1);  // (rows, H, 1)
      const at::Tensor o_c = at::zeros({NG, H, q.size(3)}, o.options())
                                 .index_add(0, p.global_slot, c.out.to(at::kFloat) * w);
      o.index_copy_(0, p.global_tokens, o_c);
      lse = lse.index_copy(1, p.global_tokens, lse_c);
      out = o.to(q.scalar_type());
      saved.insert(saved.end(), {out, lse, a.rng, a.unused, b.rng.defined() ? b.rng : a.rng,
                                 b.unused.defined() ? b.unused : a.unused, c.rng, c.unused});
    }
    ctx->save_for_backward(saved);
    ctx->saved_data["plan"] = c10::IValue::make_capsule(holder);
    ctx->saved_data["window"] = window;
    ctx->saved_data["scale"] = scale;
    return from_varlen(out, B, T);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &qv = saved[0], &kv = saved[1], &vv = saved[2], &out = saved[3], &lse = saved[4];
    const auto capsule = ctx->saved_data["plan"].toCapsule();
    const FastAttentionPlan& p = *static_cast<PlanHolder*>(capsule.get())->plan;
    const int64_t window = ctx->saved_data["window"].toInt();
    const double scale = ctx->saved_data["scale"].toDouble();
    const int64_t B = grads[0].size(0), T = grads[0].size(2);
    const auto dt = qv.scalar_type();
    const at::Tensor dout = to_varlen(grads[0].to(dt));  // (B*T, H, D)
    const bool globals = p.global_tokens.defined();
    // Global queries' rows come from part C alone: no gradient through A and B there.
    const at::Tensor dout_ab = globals ? dout.masked_fill(at::logical_not(p.not_global), 0) : dout;

    // Each part's backward runs with the merged output and log-sum-exp.
    auto [dq, dk, dv] = flash_backward(dout_ab, qv, kv, vv, out, lse, p.cu_seqlens, p.cu_seqlens, p.max_len,
                                       p.max_len, saved[5], saved[6], scale, window);
    if (globals) {
      dq = dq.to(at::kFloat);
      dk = dk.to(at::kFloat);
      dv = dv.to(at::kFloat);
      auto gathered = [&](const GatheredProblem& g, const at::Tensor& d_out, const at::Tensor& rng,
                          const at::Tensor& unused) {
        auto [gq, gk, gv] = flash_backward(d_out.index_select(0, g.q_tokens), qv.index_select(0, g.q_tokens),
                                           kv.index_select(0, g.k_tokens), vv.index_select(0, g.k_tokens),
                                           out.index_select(0, g.q_tokens), lse.index_select(1, g.q_tokens),
                                           g.cu_q, g.cu_k, g.max_q, g.max_k, rng, unused, scale, 0);
        dq.index_add_(0, g.q_tokens, gq.to(at::kFloat));  // gathered rows repeat: their gradients add up
        dk.index_add_(0, g.k_tokens, gk.to(at::kFloat));
        dv.index_add_(0, g.k_tokens, gv.to(at::kFloat));
      };
      if (!p.band_globals.empty()) gathered(p.band_globals, dout_ab, saved[7], saved[8]);
      gathered(p.global_rows, dout, saved[9], saved[10]);
    }
    return {from_varlen(dq.to(dt), B, T), from_varlen(dk.to(dt), B, T), from_varlen(dv.to(dt), B, T), at::Tensor(),
            at::Tensor(), at::Tensor()};
  }
};

}  // namespace

namespace {
// kGlobalsFromTokens, or HYFT_FLASH_GLOBALS_FROM (scripts/gpu_check.sh sets 0 to send
// the small fixtures through this path).
int64_t globals_from_tokens() {
  static const int64_t from = [] {
    const char* env = std::getenv("HYFT_FLASH_GLOBALS_FROM");
    return env ? std::atoll(env) : kGlobalsFromTokens;
  }();
  return from;
}
}  // namespace

bool fast_attention_supports(const at::Tensor& q, const AttentionMask& mask) {
  const int64_t D = q.size(3), T = q.size(2);
  const bool globals = mask.rule.global_stride() > 0 && !mask.rule.is_full_causal(T);
  return q.is_cuda() && (q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf) && D % 8 == 0 &&
         D <= 256 && !mask.causal && mask.q_start == 0 && mask.layout.position_ids.defined() &&
         (!globals || T >= globals_from_tokens());
}

at::Tensor fast_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask) {
  const int64_t B = q.size(0), T = q.size(2);
  const int64_t window = mask.rule.is_full_causal(T) ? 0 : mask.rule.window_size;
  if (!mask.plan) mask.plan = make_plan(mask, B, T, window, q.device());
  auto holder = c10::make_intrusive<PlanHolder>();
  holder->plan = mask.plan;
  return FastAttentionFunction::apply(q, k, v, holder, window, 1.0 / std::sqrt(double(q.size(3))));
}

}  // namespace hyft::attention
