// The flash path of attention/backend.h; the parts A, B, C are explained in
// flash_attention.h. Shapes: B rows, T tokens, H query heads, Hkv key/value heads,
// D head dim, G the most global tokens of any row; "varlen layout" is the flash
// kernels' (B*T, H, D).
#include "attention/flash_attention.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

namespace hyft::attention {

// What every layer of one forward pass shares: the documents as flash's
// cu_seqlens, and where the global tokens are.
struct FastAttentionPlan {
  at::Tensor cu_seqlens;  // (n + 1,) int32: where each document starts in the B*T tokens
  int64_t max_len = 0;    // the longest document
  at::Tensor pos, doc;    // (B, T) int64: position in the document, document id
  int64_t G = 0;          // global tokens of the fullest row (0: the rule has none)
  at::Tensor gidx;        // (B, G) int64 token index; rows with fewer repeat their first
  at::Tensor gvalid;      // (B, G) bool: a real global token (not a repeat)
  at::Tensor gpos, gdoc;  // (B, G) int64
  at::Tensor is_global;   // (B, T) bool
};

namespace {

// The plan through the autograd context (a capsule holds a CustomClassHolder).
struct PlanHolder : torch::CustomClassHolder {
  std::shared_ptr<FastAttentionPlan> plan;
};

// `window`: the band, 0 when the rule is plain causal over these rows (no globals then).
std::shared_ptr<FastAttentionPlan> make_plan(const AttentionMask& mask, int64_t B, int64_t T, int64_t window,
                                            const at::Device& device) {
  auto plan = std::make_shared<FastAttentionPlan>();
  const auto& L = mask.layout;
  plan->pos = L.position_ids.to(device, at::kLong).contiguous();
  plan->doc = L.document_ids.defined() ? L.document_ids.to(device, at::kLong).contiguous()
                                       : at::zeros_like(plan->pos);
  // A document starts at each row's first token and wherever the document id changes.
  at::Tensor start = at::ones({B, T}, plan->pos.options().dtype(at::kBool));
  if (T > 1) start.slice(1, 1).copy_(plan->doc.slice(1, 1) != plan->doc.slice(1, 0, T - 1));
  const at::Tensor starts = at::nonzero(start.reshape({-1})).reshape({-1});
  plan->cu_seqlens = at::cat({starts, at::full({1}, B * T, starts.options())}).to(at::kInt);
  plan->max_len = (plan->cu_seqlens.slice(0, 1) - plan->cu_seqlens.slice(0, 0, -1)).max().item<int64_t>();

  const int64_t s = mask.rule.global_stride();
  if (s > 0 && window > 0) {
    plan->is_global = plan->pos.remainder(s) == 0;
    const at::Tensor counts = plan->is_global.sum(1);  // (B,)
    plan->G = counts.max().item<int64_t>();
    // The global tokens of each row first, in order (a stable sort puts them there).
    const at::Tensor order = at::argsort(at::logical_not(plan->is_global).to(at::kInt), /*stable=*/true, 1);
    at::Tensor gidx = order.slice(1, 0, plan->G);
    plan->gvalid = at::arange(plan->G, counts.options()).unsqueeze(0) < counts.unsqueeze(1);
    plan->gidx = at::where(plan->gvalid, gidx, gidx.slice(1, 0, 1)).contiguous();  // repeats: the row's first
    plan->gpos = plan->pos.gather(1, plan->gidx);
    plan->gdoc = plan->doc.gather(1, plan->gidx);
  }
  return plan;
}

// (B, Hx, T, D) <-> (B*T, Hx, D)
at::Tensor to_varlen(const at::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0) * x.size(2), x.size(1), x.size(3)}).contiguous();
}
at::Tensor from_varlen(const at::Tensor& y, int64_t B, int64_t T) {
  return y.view({B, T, y.size(1), y.size(2)}).transpose(1, 2);
}

struct Args {
  int64_t window = 0;  // W; 0: none (documents only)
  double scale = 1.0;
};

// Part A, the flash kernels: (out (B*T, H, D), lse (H, B*T), rng_state, unused).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> band_forward(const at::Tensor& qv, const at::Tensor& kv,
                                                                        const at::Tensor& vv,
                                                                        const FastAttentionPlan& p, const Args& a) {
  std::optional<int64_t> left;
  if (a.window > 0) left = a.window - 1;
  auto [out, lse, rng, unused, debug] = at::_flash_attention_forward(
      qv, kv, vv, p.cu_seqlens, p.cu_seqlens, p.max_len, p.max_len, 0.0, /*is_causal=*/true,
      /*return_debug_mask=*/false, a.scale, left, left ? std::optional<int64_t>(0) : std::nullopt);
  (void)debug;
  return {out, lse, rng, unused};
}

// A large negative bias for keys a query may not see: finite, so a query that sees
// none of a part's keys gets a log-sum-exp near -1e4 and weight exp(-1e4) = 0 in the
// merge (an infinite bias would give NaN there); real scores are far above it.
constexpr double kMasked = -1e4;

// Additive bias (B, 1, n, m) in `dtype`, 0 where `allowed` (B, n, m), else kMasked;
// the last dimension padded to 16 elements so the kernel's rows are aligned.
at::Tensor bias_of(const at::Tensor& allowed, at::ScalarType dtype) {
  const int64_t B = allowed.size(0), n = allowed.size(1), m = allowed.size(2), mp = (m + 15) / 16 * 16;
  at::Tensor bias = at::zeros({B, 1, n, mp}, allowed.options().dtype(dtype)).slice(3, 0, m);
  bias.masked_fill_(at::logical_not(allowed).unsqueeze(1), kMasked);
  return bias;
}

// (B, H, n) float32 -> (B, H, ceil(n / 32) * 32), the memory-efficient kernel's layout.
at::Tensor pad_lse(const at::Tensor& lse) {
  const int64_t n = lse.size(2), np = (n + 31) / 32 * 32;
  return at::constant_pad_nd(lse, {0, np - n}, 0.0).contiguous();
}

// Part B's bias (B, 1, T, G): global keys of the query's document at positions <= its own - W.
at::Tensor part_b_bias(const FastAttentionPlan& p, int64_t window, at::ScalarType dtype) {
  return bias_of(p.gvalid.unsqueeze(1) & (p.gdoc.unsqueeze(1) == p.doc.unsqueeze(2)) &
                     (p.gpos.unsqueeze(1) + window <= p.pos.unsqueeze(2)),
                 dtype);
}

// Part C's bias (B, 1, G, T): every key of the global query's document up to the query.
at::Tensor part_c_bias(const FastAttentionPlan& p, at::ScalarType dtype) {
  const int64_t T = p.pos.size(1);
  const at::Tensor idx_t = at::arange(T, p.pos.options());
  return bias_of((p.doc.unsqueeze(1) == p.gdoc.unsqueeze(2)) & (idx_t.view({1, 1, T}) <= p.gidx.unsqueeze(2)), dtype);
}

// (B, H, n, D) with the memory layout the memory-efficient kernels produce and
// expect for their outputs: (B, n, H, D) contiguous.
at::Tensor bthd(const at::Tensor& x) { return x.transpose(1, 2).contiguous().transpose(1, 2); }

// (B, Hkv, n, D) -> (B, H, n, D), each key/value head repeated for its query heads.
at::Tensor expand_heads(const at::Tensor& x, int64_t H) {
  return bthd(x.size(1) == H ? x : x.repeat_interleave(H / x.size(1), 1));
}

// (B, H, n, D) gradient of repeated heads -> (B, Hkv, n, D), summed per group.
at::Tensor sum_heads(const at::Tensor& g, int64_t Hkv) {
  const int64_t B = g.size(0), H = g.size(1);
  return g.view({B, Hkv, H / Hkv, g.size(2), g.size(3)}).sum(2);
}

// Rows `idx` (B, G) of x (B, Hx, T, D) -> (B, Hx, G, D).
at::Tensor gather_rows(const at::Tensor& x, const at::Tensor& idx) {
  return x.gather(2, idx.view({idx.size(0), 1, idx.size(1), 1}).expand({x.size(0), x.size(1), idx.size(1), x.size(3)}));
}

// Index (B, Hx, G, D) for scattering rows `idx` (B, G) into (B, Hx, T, D).
at::Tensor row_index(const at::Tensor& idx, int64_t Hx, int64_t D) {
  return idx.view({idx.size(0), 1, idx.size(1), 1}).expand({idx.size(0), Hx, idx.size(1), D});
}

struct FastAttentionFunction : torch::autograd::Function<FastAttentionFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor q, at::Tensor k, at::Tensor v,
                            c10::intrusive_ptr<PlanHolder> holder, int64_t window, double scale) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
    const Args a{window, scale};
    const FastAttentionPlan& p = *holder->plan;
    // A: the band (or the whole causal document) through the flash kernels.
    auto [oa, lse_a, rng, unused] = band_forward(to_varlen(q), to_varlen(k), to_varlen(v), p, a);
    at::Tensor out = from_varlen(oa, B, T);                    // (B, H, T, D)
    at::Tensor lse = lse_a.view({H, B, T}).transpose(0, 1);     // (B, H, T) float32
    at::Tensor seeds = at::empty({0}, q.options().dtype(at::kLong));
    if (p.G > 0) {
      const at::Tensor qc = bthd(q);
      const at::Tensor kg = expand_heads(gather_rows(k, p.gidx), H), vg = expand_heads(gather_rows(v, p.gidx), H);
      // B: global keys outside the band, merged with A by log-sum-exp.
      auto [ob, lse_b, seed_b, offset_b] = at::_scaled_dot_product_efficient_attention(
          qc, kg, vg, part_b_bias(p, window, q.scalar_type()).expand({B, H, T, p.G}), /*compute_log_sumexp=*/true, 0.0, false, scale);
      const at::Tensor lb = lse_b.slice(2, 0, T);
      const at::Tensor merged = at::logaddexp(lse, lb);
      at::Tensor o = out.to(at::kFloat) * at::exp(lse - merged).unsqueeze(-1) +
                     ob.to(at::kFloat) * at::exp(lb - merged).unsqueeze(-1);
      lse = merged;
      // C: global queries see every earlier key of their document; their rows are C's alone.
      const at::Tensor qg = bthd(gather_rows(q, p.gidx));
      auto [og, lse_c, seed_c, offset_c] = at::_scaled_dot_product_efficient_attention(
          qg, expand_heads(k, H), expand_heads(v, H), part_c_bias(p, q.scalar_type()).expand({B, H, p.G, T}), true, 0.0, false, scale);
      o.scatter_(2, row_index(p.gidx, H, D), og.to(at::kFloat));
      lse = lse.scatter(2, p.gidx.unsqueeze(1).expand({B, H, p.G}), lse_c.slice(2, 0, p.G));
      out = o.to(q.scalar_type());
      seeds = at::stack({seed_b.to(at::kLong).reshape({-1}), offset_b.to(at::kLong).reshape({-1}),
                         seed_c.to(at::kLong).reshape({-1}), offset_c.to(at::kLong).reshape({-1})});
    }
    out = out.contiguous();
    ctx->save_for_backward({q, k, v, out, lse.contiguous(), rng, unused});
    ctx->saved_data["plan"] = c10::IValue::make_capsule(holder);
    ctx->saved_data["window"] = window;
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    const at::Tensor &rng = saved[5], &unused = saved[6];
    const auto capsule = ctx->saved_data["plan"].toCapsule();
    const FastAttentionPlan& p = *static_cast<PlanHolder*>(capsule.get())->plan;
    const Args a{ctx->saved_data["window"].toInt(), ctx->saved_data["scale"].toDouble()};
    const int64_t B = q.size(0), H = q.size(1), Hkv = k.size(1), T = q.size(2), D = q.size(3);
    const auto dt = q.scalar_type();
    const at::Tensor dout = grads[0].to(dt).contiguous();  // (B, H, T, D)
    // Global queries' rows come from part C alone: no gradient through A and B there.
    const at::Tensor dout_ab = p.G > 0 ? dout.masked_fill(p.is_global.view({B, 1, T, 1}), 0) : dout;

    // A: the flash backward with the merged output and log-sum-exp.
    std::optional<int64_t> left;
    if (a.window > 0) left = a.window - 1;
    const at::Tensor lse_v = lse.transpose(0, 1).reshape({H, B * T}).contiguous();
    auto [dqv, dkv, dvv] = at::_flash_attention_backward(
        to_varlen(dout_ab), to_varlen(q), to_varlen(k), to_varlen(v), to_varlen(out), lse_v, p.cu_seqlens,
        p.cu_seqlens, p.max_len, p.max_len, 0.0, /*is_causal=*/true, rng, unused, a.scale, left,
        left ? std::optional<int64_t>(0) : std::nullopt);
    at::Tensor dq = from_varlen(dqv, B, T), dk = from_varlen(dkv, B, T), dv = from_varlen(dvv, B, T);
    if (p.G == 0) return {dq, dk, dv, at::Tensor(), at::Tensor(), at::Tensor()};

    dq = dq.to(at::kFloat);
    dk = dk.to(at::kFloat);
    dv = dv.to(at::kFloat);
    const at::Tensor zero = at::zeros({}, q.options().dtype(at::kLong));
    // B: the memory-efficient backward with the merged output and log-sum-exp.
    {
      const at::Tensor kg = expand_heads(gather_rows(k, p.gidx), H), vg = expand_heads(gather_rows(v, p.gidx), H);
      auto [dqb, dkg, dvg, dbias] = at::_scaled_dot_product_efficient_attention_backward(
          bthd(dout_ab), bthd(q), kg, vg, part_b_bias(p, a.window, dt).expand({B, H, T, p.G}), bthd(out), pad_lse(lse), zero, zero, 0.0,
          {true, true, true, false}, false, a.scale);
      (void)dbias;
      dq += dqb.to(at::kFloat);
      const at::Tensor keep = p.gvalid.view({B, 1, p.G, 1});  // repeats that pad a row add nothing
      dk.scatter_add_(2, row_index(p.gidx, Hkv, D), sum_heads(dkg.to(at::kFloat), Hkv).masked_fill(at::logical_not(keep), 0));
      dv.scatter_add_(2, row_index(p.gidx, Hkv, D), sum_heads(dvg.to(at::kFloat), Hkv).masked_fill(at::logical_not(keep), 0));
    }
    // C: global queries over every earlier key of their document.
    {
      const at::Tensor real = p.gvalid.view({B, 1, p.G, 1});
      const at::Tensor dog = bthd(gather_rows(dout, p.gidx).masked_fill(at::logical_not(real), 0));
      const at::Tensor og = bthd(gather_rows(out, p.gidx));
      const at::Tensor lse_g = lse.gather(2, p.gidx.unsqueeze(1).expand({B, H, p.G}));
      auto [dqg, dkc, dvc, dbias] = at::_scaled_dot_product_efficient_attention_backward(
          dog, bthd(gather_rows(q, p.gidx)), expand_heads(k, H), expand_heads(v, H), part_c_bias(p, dt).expand({B, H, p.G, T}), og,
          pad_lse(lse_g), zero, zero, 0.0, {true, true, true, false}, false, a.scale);
      (void)dbias;
      dq.scatter_add_(2, row_index(p.gidx, H, D), dqg.to(at::kFloat));
      dk += sum_heads(dkc.to(at::kFloat), Hkv);
      dv += sum_heads(dvc.to(at::kFloat), Hkv);
    }
    return {dq.to(dt), dk.to(dt), dv.to(dt), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool fast_attention_supports(const at::Tensor& q, const AttentionMask& mask) {
  const int64_t D = q.size(3), T = q.size(2);
  const bool globals = mask.rule.global_stride() > 0 && !mask.rule.is_full_causal(T);
  return q.is_cuda() && (q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf) && D % 8 == 0 &&
         D <= 256 && !mask.causal && mask.q_start == 0 && mask.layout.position_ids.defined() &&
         (!globals || T >= kGlobalsFromTokens);
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
