// The flash path of attention/backend.h; the parts A, B, C are explained in
// flash_attention.h. Shapes: B rows, T tokens, H query heads, Hkv key/value heads,
// D head dim, G the most global tokens of any row; "BH layout" is (B*H, T, D),
// "varlen layout" is the flash kernels' (B*T, H, D).
#include "attention/flash_attention.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <limits>

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

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

std::shared_ptr<FastAttentionPlan> make_plan(const AttentionMask& mask, int64_t B, int64_t T,
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
  if (s > 0 && mask.rule.window_size > 0) {
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

// Rows of query chunks so that one (B*H, rows, other) float32 block stays near 64M values.
int64_t chunk_rows(int64_t BH, int64_t other) {
  return std::max<int64_t>(64, (int64_t(1) << 26) / std::max<int64_t>(1, BH * other));
}

// (B, H, n, m) mask from (B, n, m), flattened to (B*H, n, m).
at::Tensor per_head(const at::Tensor& m, int64_t H) {
  return m.unsqueeze(1).expand({m.size(0), H, m.size(1), m.size(2)}).reshape({-1, m.size(1), m.size(2)});
}

// (B, Hkv, n, D) -> (B*H, n, D), each key/value head repeated for its query heads.
at::Tensor repeat_heads(const at::Tensor& x, int64_t H) {
  const int64_t B = x.size(0), Hkv = x.size(1);
  return x.repeat_interleave(H / Hkv, 1).reshape({B * H, x.size(2), x.size(3)});
}

// (B*H, n, D) float32 gradient of repeated heads -> (B, Hkv, n, D), summed per group.
at::Tensor sum_heads(const at::Tensor& g, int64_t B, int64_t H, int64_t Hkv) {
  return g.view({B, Hkv, H / Hkv, g.size(1), g.size(2)}).sum(2);
}

// Rows `idx` (B, G) of x (B, Hx, T, D) -> (B, Hx, G, D).
at::Tensor gather_rows(const at::Tensor& x, const at::Tensor& idx) {
  return x.gather(2, idx.view({idx.size(0), 1, idx.size(1), 1}).expand({x.size(0), x.size(1), idx.size(1), x.size(3)}));
}

// exp(S - lse) with masked scores (-inf) giving 0, also in rows with nothing allowed.
at::Tensor probabilities(const at::Tensor& S, const at::Tensor& lse) {
  const at::Tensor safe = at::where(at::isinf(lse), at::zeros_like(lse), lse);
  return at::exp(S - safe.unsqueeze(-1));
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

struct FastAttentionFunction : torch::autograd::Function<FastAttentionFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor q, at::Tensor k, at::Tensor v,
                            c10::intrusive_ptr<PlanHolder> holder, int64_t window, double scale) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), BH = B * H;
    const Args a{window, scale};
    const FastAttentionPlan& p = *holder->plan;
    const at::Tensor qv = to_varlen(q), kv = to_varlen(k), vv = to_varlen(v);
    auto [oa, lse_a, rng, unused] = band_forward(qv, kv, vv, p, a);

    at::Tensor out = from_varlen(oa, B, T);                              // (B, H, T, D)
    at::Tensor lse = lse_a.view({H, B, T}).transpose(0, 1).reshape({BH, T});  // (BH, T) float32
    if (p.G > 0) {
      at::Tensor o = out.reshape({BH, T, D}).to(at::kFloat);
      const at::Tensor qb = q.reshape({BH, T, D}).contiguous();
      const at::Tensor kg = repeat_heads(gather_rows(k, p.gidx), H), vg = repeat_heads(gather_rows(v, p.gidx), H);
      // B: global keys outside the band, merged with A by log-sum-exp.
      const int64_t C = chunk_rows(BH, p.G);
      for (int64_t c0 = 0; c0 < T; c0 += C) {
        const int64_t c1 = std::min(T, c0 + C);
        at::Tensor S = at::bmm(qb.slice(1, c0, c1), kg.transpose(1, 2), at::kFloat).mul_(scale);  // (BH, c, G)
        const at::Tensor allowed = p.gvalid.unsqueeze(1) & (p.gdoc.unsqueeze(1) == p.doc.slice(1, c0, c1).unsqueeze(2)) &
                                   (p.gpos.unsqueeze(1) + window <= p.pos.slice(1, c0, c1).unsqueeze(2));  // (B, c, G)
        S.masked_fill_(at::logical_not(per_head(allowed, H)), kNegInf);
        const at::Tensor lse_b = at::logsumexp(S, -1);                                     // (BH, c)
        const at::Tensor ob = at::bmm(probabilities(S, lse_b).to(q.scalar_type()), vg, at::kFloat);  // (BH, c, D)
        const at::Tensor la = lse.slice(1, c0, c1);
        const at::Tensor merged = at::logaddexp(la, lse_b);
        at::Tensor oc = o.slice(1, c0, c1);
        oc.copy_(oc * at::exp(la - merged).unsqueeze(-1) + ob * at::exp(lse_b - merged).unsqueeze(-1));
        lse.slice(1, c0, c1).copy_(merged);
      }
      // C: global queries see every earlier key of their document.
      const at::Tensor qg = repeat_heads(gather_rows(q, p.gidx), H);  // (BH, G, D) (H / H = 1: a reshape)
      const at::Tensor kb = repeat_heads(k, H), vb = repeat_heads(v, H);  // (BH, T, D)
      const at::Tensor idx_t = at::arange(T, p.pos.options());
      const int64_t Cg = chunk_rows(BH, T);
      for (int64_t g0 = 0; g0 < p.G; g0 += Cg) {
        const int64_t g1 = std::min(p.G, g0 + Cg);
        at::Tensor S = at::bmm(qg.slice(1, g0, g1), kb.transpose(1, 2), at::kFloat).mul_(scale);  // (BH, g, T)
        const at::Tensor gi = p.gidx.slice(1, g0, g1);
        const at::Tensor allowed = (p.doc.unsqueeze(1) == p.gdoc.slice(1, g0, g1).unsqueeze(2)) &
                                   (idx_t.view({1, 1, T}) <= gi.unsqueeze(2));  // (B, g, T)
        S.masked_fill_(at::logical_not(per_head(allowed, H)), kNegInf);
        const at::Tensor lse_c = at::logsumexp(S, -1);  // (BH, g): finite, the query sees itself
        const at::Tensor og = at::bmm(probabilities(S, lse_c).to(q.scalar_type()), vb, at::kFloat);  // (BH, g, D)
        const at::Tensor rows = gi.unsqueeze(1).expand({B, H, g1 - g0}).reshape({BH, g1 - g0});
        o.scatter_(1, rows.unsqueeze(-1).expand({BH, g1 - g0, D}), og);
        lse.scatter_(1, rows, lse_c);
      }
      out = o.view({B, H, T, D}).to(q.scalar_type());
    }
    out = out.contiguous();
    ctx->save_for_backward({q, k, v, out, lse, rng, unused});
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
    const int64_t B = q.size(0), H = q.size(1), Hkv = k.size(1), T = q.size(2), D = q.size(3), BH = B * H;
    const auto dt = q.scalar_type();
    at::Tensor dout = grads[0].to(dt).contiguous();  // (B, H, T, D)
    // Global queries' rows come from part C alone: no gradient through A and B there.
    at::Tensor dout_ab = p.G > 0 ? dout.masked_fill(p.is_global.view({B, 1, T, 1}), 0) : dout;

    // A: the flash backward with the merged output and log-sum-exp.
    std::optional<int64_t> left;
    if (a.window > 0) left = a.window - 1;
    const at::Tensor lse_v = lse.view({B, H, T}).transpose(0, 1).reshape({H, B * T}).contiguous();
    auto [dqv, dkv, dvv] = at::_flash_attention_backward(
        to_varlen(dout_ab), to_varlen(q), to_varlen(k), to_varlen(v), to_varlen(out), lse_v, p.cu_seqlens,
        p.cu_seqlens, p.max_len, p.max_len, 0.0, /*is_causal=*/true, rng, unused, a.scale, left,
        left ? std::optional<int64_t>(0) : std::nullopt);
    at::Tensor dq = from_varlen(dqv, B, T).to(at::kFloat);
    at::Tensor dk = from_varlen(dkv, B, T).to(at::kFloat);
    at::Tensor dv = from_varlen(dvv, B, T).to(at::kFloat);
    if (p.G == 0) return {dq.to(dt), dk.to(dt), dv.to(dt), at::Tensor(), at::Tensor(), at::Tensor()};

    const at::Tensor qb = q.reshape({BH, T, D}).contiguous();
    const at::Tensor ob = out.reshape({BH, T, D});
    const at::Tensor gb = dout_ab.reshape({BH, T, D});
    at::Tensor dqb = at::zeros({BH, T, D}, q.options().dtype(at::kFloat));
    // B: global keys outside the band.
    {
      const at::Tensor kg = repeat_heads(gather_rows(k, p.gidx), H), vg = repeat_heads(gather_rows(v, p.gidx), H);
      at::Tensor dkg = at::zeros({BH, p.G, D}, dqb.options()), dvg = at::zeros_like(dkg);
      const at::Tensor delta = (gb.to(at::kFloat) * ob.to(at::kFloat)).sum(-1);  // (BH, T): rowsum(dO o O)
      const int64_t C = chunk_rows(BH, p.G);
      for (int64_t c0 = 0; c0 < T; c0 += C) {
        const int64_t c1 = std::min(T, c0 + C);
        const at::Tensor qc = qb.slice(1, c0, c1), gc = gb.slice(1, c0, c1);
        at::Tensor S = at::bmm(qc, kg.transpose(1, 2), at::kFloat).mul_(a.scale);
        const at::Tensor allowed = p.gvalid.unsqueeze(1) & (p.gdoc.unsqueeze(1) == p.doc.slice(1, c0, c1).unsqueeze(2)) &
                                   (p.gpos.unsqueeze(1) + a.window <= p.pos.slice(1, c0, c1).unsqueeze(2));
        S.masked_fill_(at::logical_not(per_head(allowed, H)), kNegInf);
        const at::Tensor P = probabilities(S, lse.slice(1, c0, c1));  // (BH, c, G) with the merged lse
        dvg += at::bmm(P.to(dt).transpose(1, 2), gc, at::kFloat);
        const at::Tensor dP = at::bmm(gc, vg.transpose(1, 2), at::kFloat);
        const at::Tensor dS = (P * (dP - delta.slice(1, c0, c1).unsqueeze(-1))).to(dt);
        dqb.slice(1, c0, c1).add_(at::bmm(dS, kg, at::kFloat), a.scale);
        dkg.add_(at::bmm(dS.transpose(1, 2), qc, at::kFloat), a.scale);
      }
      // Back to the key/value heads and the tokens they were gathered from (real ones only).
      const at::Tensor keep = p.gvalid.view({B, 1, p.G, 1});
      const at::Tensor idx = p.gidx.view({B, 1, p.G, 1}).expand({B, Hkv, p.G, D});
      dk.scatter_add_(2, idx, sum_heads(dkg, B, H, Hkv).masked_fill(at::logical_not(keep), 0));
      dv.scatter_add_(2, idx, sum_heads(dvg, B, H, Hkv).masked_fill(at::logical_not(keep), 0));
    }
    // C: global queries over every earlier key of their document.
    {
      const at::Tensor qg = repeat_heads(gather_rows(q, p.gidx), H);
      const at::Tensor kb = repeat_heads(k, H), vb = repeat_heads(v, H);
      // The queries' gradients, zero for the repeats that pad a row.
      const at::Tensor real = p.gvalid.view({B, 1, p.G, 1});
      const at::Tensor dog = repeat_heads(gather_rows(dout, p.gidx).masked_fill(at::logical_not(real), 0), H);
      const at::Tensor og = repeat_heads(gather_rows(out, p.gidx), H);
      const at::Tensor lse_g = lse.view({B, H, T}).gather(2, p.gidx.unsqueeze(1).expand({B, H, p.G})).reshape({BH, p.G});
      const at::Tensor delta = (dog.to(at::kFloat) * og.to(at::kFloat)).sum(-1);  // (BH, G)
      at::Tensor dkb = at::zeros({BH, T, D}, dqb.options()), dvb = at::zeros_like(dkb);
      at::Tensor dqg = at::zeros({BH, p.G, D}, dqb.options());
      const at::Tensor idx_t = at::arange(T, p.pos.options());
      const int64_t Cg = chunk_rows(BH, T);
      for (int64_t g0 = 0; g0 < p.G; g0 += Cg) {
        const int64_t g1 = std::min(p.G, g0 + Cg);
        const at::Tensor qc = qg.slice(1, g0, g1), gc = dog.slice(1, g0, g1);
        at::Tensor S = at::bmm(qc, kb.transpose(1, 2), at::kFloat).mul_(a.scale);
        const at::Tensor allowed = (p.doc.unsqueeze(1) == p.gdoc.slice(1, g0, g1).unsqueeze(2)) &
                                   (idx_t.view({1, 1, T}) <= p.gidx.slice(1, g0, g1).unsqueeze(2));
        S.masked_fill_(at::logical_not(per_head(allowed, H)), kNegInf);
        const at::Tensor P = probabilities(S, lse_g.slice(1, g0, g1));  // (BH, g, T)
        dvb += at::bmm(P.to(dt).transpose(1, 2), gc, at::kFloat);
        const at::Tensor dP = at::bmm(gc, vb.transpose(1, 2), at::kFloat);
        const at::Tensor dS = (P * (dP - delta.slice(1, g0, g1).unsqueeze(-1))).to(dt);
        dqg.slice(1, g0, g1).add_(at::bmm(dS, kb, at::kFloat), a.scale);
        dkb.add_(at::bmm(dS.transpose(1, 2), qc, at::kFloat), a.scale);
      }
      const at::Tensor rows = p.gidx.unsqueeze(1).expand({B, H, p.G}).reshape({BH, p.G});
      dqb.scatter_add_(1, rows.unsqueeze(-1).expand({BH, p.G, D}), dqg);
      dk += sum_heads(dkb, B, H, Hkv);
      dv += sum_heads(dvb, B, H, Hkv);
    }
    dq += dqb.view({B, H, T, D});
    return {dq.to(dt), dk.to(dt), dv.to(dt), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool fast_attention_supports(const at::Tensor& q, const AttentionMask& mask) {
  const int64_t D = q.size(3);
  return q.is_cuda() && (q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf) && D % 8 == 0 &&
         D <= 256 && !mask.causal && mask.q_start == 0 && mask.layout.position_ids.defined();
}

at::Tensor fast_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask) {
  const int64_t B = q.size(0), T = q.size(2);
  if (!mask.plan) mask.plan = make_plan(mask, B, T, q.device());
  auto holder = c10::make_intrusive<PlanHolder>();
  holder->plan = mask.plan;
  const int64_t window = mask.rule.is_full_causal(T) ? 0 : mask.rule.window_size;
  return FastAttentionFunction::apply(q, k, v, holder, window, 1.0 / std::sqrt(double(q.size(3))));
}

}  // namespace hyft::attention
