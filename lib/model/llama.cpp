#include "model/llama.h"

#include "common/error.h"
#include "kernels/fused_ops.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

namespace hyft::model {

using attention::Layout;

// --- building blocks --------------------------------------------------------
Projection::Projection(int64_t in, int64_t out, bool has_bias, const at::TensorOptions& options) {
  weight = register_parameter("weight", at::empty({out, in}, options));
  if (has_bias) bias = register_parameter("bias", at::empty({out}, options));
}

at::Tensor LinearLayer::forward_over(const at::Tensor&, const at::Tensor&) {
  TORCH_INTERNAL_ASSERT(false, "forward_over: this layer has no base projection");
}

at::Tensor Projection::forward(const at::Tensor& x) {
  return quantized ? quant::quantized_linear(x, *quantized, bias) : kernels::linear_inference(x, weight, bias);
}

at::Tensor Projection::forward_over(const at::Tensor&, const at::Tensor& y) { return y; }

void Projection::quantize(quant::Format format) {
  if (format == quant::Format::None || quantized) return;
  at::NoGradGuard no_grad;
  quantized = std::make_shared<const quant::QuantizedWeight>(quant::QuantizedWeight::from(weight, format));
  weight.set_data(at::empty({0}, weight.options()));  // the codes replace it
}

at::Tensor Projection::dense_weight() const { return quantized ? quantized->dequantize() : weight; }

at::Tensor Projection::forward_add_residual(const at::Tensor& x, const at::Tensor& residual) {
  if (bias.defined() || at::GradMode::is_enabled() || !kernels::gemv_epilogues_on()) return {};
  return quantized ? quant::quantized_gemv_add_residual(x, *quantized, residual)
                   : kernels::linear_add_residual(x, weight, residual);
}

TokenEmbedding::TokenEmbedding(int64_t vocab, int64_t dim, const at::TensorOptions& options) {
  weight = register_parameter("weight", at::empty({vocab, dim}, options));
}

at::Tensor TokenEmbedding::forward(const at::Tensor& ids) { return at::embedding(weight, ids); }

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_, const at::TensorOptions& options) : eps(eps_) {
  weight = register_parameter("weight", at::empty({dim}, options));
}

at::Tensor rms_norm_reference(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::Tensor h = x.to(at::kFloat);
  h = h * at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * h.to(x.scalar_type());
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  // ATen's rms_norm (one fused kernel on CUDA) normalises in float32 like the
  // reference; it rounds once where the reference rounds before the weight.
  // Without autograd (eval, generation) hyft's kernel computes the same.
  if (x.scalar_type() != weight.scalar_type()) return rms_norm_reference(x, weight, eps);
  return kernels::rms_norm_inference(x, weight, eps);
}

std::pair<at::Tensor, at::Tensor> RMSNormImpl::add_forward(const at::Tensor& x, const at::Tensor& d) {
  if (x.scalar_type() != weight.scalar_type() || d.scalar_type() != x.scalar_type()) {
    const at::Tensor h = x + d;
    return {h, forward(h)};
  }
  return kernels::add_rms_norm_inference(x, d, weight, eps);
}

namespace {
std::shared_ptr<LinearLayer>& projection_slot(
    const std::string& owner, const std::string& name,
    std::initializer_list<std::pair<const char*, std::shared_ptr<LinearLayer>*>> slots) {
  for (const auto& [n, slot] : slots)
    if (name == n) return *slot;
  fail(owner, " has no projection '", name, "'");
}
}  // namespace

// --- attention --------------------------------------------------------------
LlamaAttentionImpl::LlamaAttentionImpl(const LlamaConfig& c, const at::TensorOptions& options, int64_t layer)
    : num_heads(c.num_attention_heads), num_kv_heads(c.num_key_value_heads), head_dim(c.head_dim), layer_index(layer) {
  const int64_t D = c.hidden_size;
  const bool b = c.attention_bias;
  q_proj = register_module("q_proj", std::make_shared<Projection>(D, num_heads * head_dim, b, options));
  k_proj = register_module("k_proj", std::make_shared<Projection>(D, num_kv_heads * head_dim, b, options));
  v_proj = register_module("v_proj", std::make_shared<Projection>(D, num_kv_heads * head_dim, b, options));
  o_proj = register_module("o_proj", std::make_shared<Projection>(num_heads * head_dim, D, b, options));
}

std::shared_ptr<LinearLayer>& LlamaAttentionImpl::projection(const std::string& name) {
  return projection_slot("self_attn", name,
                         {{"q_proj", &q_proj}, {"k_proj", &k_proj}, {"v_proj", &v_proj}, {"o_proj", &o_proj}});
}

void LlamaAttentionImpl::replace_projection(const std::string& name, std::shared_ptr<LinearLayer> layer) {
  projection(name) = replace_module(name, std::move(layer));
}

at::Tensor LlamaAttentionImpl::forward(const at::Tensor& x, const ForwardContext& ctx) {
  return o_proj->forward(attend(x, ctx));
}

at::Tensor LlamaAttentionImpl::attend_decoding(const at::Tensor& x, const ForwardContext& ctx,
                                               const kernels::InputNorm& norm) {
  const int64_t B = x.size(0), T = x.size(1);
  if (!ctx.slots || B * T != 1) return {};
  const SlotStep& st = *ctx.slots;
  const kernels::SlotWrite target{ctx.cos, ctx.sin, st.cache->k[size_t(layer_index)], st.cache->v[size_t(layer_index)],
                                  st.positions, num_heads, num_kv_heads};
  const at::Tensor q = qkv_.rotary_slot_write(x, {q_proj.get(), k_proj.get(), v_proj.get()}, target, norm);
  if (!q.defined()) return {};
  const at::Tensor out = kernels::slot_attention(q, target.k_cache, target.v_cache, st.positions, st.keys, ctx.mask);
  return out.reshape({B, T, num_heads * head_dim});
}

at::Tensor LlamaAttentionImpl::attend(const at::Tensor& x, const ForwardContext& ctx) {
  const int64_t B = x.size(0), T = x.size(1);
  // A decoding stream without adapters on q/k/v: one GEMV that ends in RoPE and the
  // cache write.
  if (at::Tensor out = attend_decoding(x, ctx); out.defined()) return out;
  const auto qkv = qkv_.forward(x, {q_proj.get(), k_proj.get(), v_proj.get()});  // one GEMM where it can
  // (B, T, H*Dh) -> (B, T, H, Dh)
  at::Tensor q = qkv.parts[0].view({B, T, num_heads, head_dim});
  at::Tensor k = qkv.parts[1].view({B, T, num_kv_heads, head_dim});
  at::Tensor v = qkv.parts[2].view({B, T, num_kv_heads, head_dim});
  if (ctx.slots) {  // T == 1: q and k rotated, row b's key and value into its slot, then its query reads the slot
    const SlotStep& st = *ctx.slots;
    at::Tensor& ck = st.cache->k[size_t(layer_index)];  // (S, Tmax, Hkv, Dh)
    at::Tensor& cv = st.cache->v[size_t(layer_index)];
    q = kernels::rotary_slot_write_(q, k, v, ctx.cos, ctx.sin, ck, cv, st.positions);
    const at::Tensor out = kernels::slot_attention(q, ck, cv, st.positions, st.keys, ctx.mask);  // (B, 1, H, Dh)
    return out.reshape({B, T, num_heads * head_dim});
  }
  // rotated, -> (B, H, T, Dh) as views
  q = kernels::rotary(q, ctx.cos, ctx.sin).transpose(1, 2);
  k = kernels::rotary(k, ctx.cos, ctx.sin).transpose(1, 2);
  v = v.transpose(1, 2);
  if (ctx.cache) {  // (B, Hkv, Tpast + T, Dh)
    auto& ck = ctx.cache->k[size_t(layer_index)];
    auto& cv = ctx.cache->v[size_t(layer_index)];
    ck = ck.defined() ? at::cat({ck, k}, 2) : k;
    cv = cv.defined() ? at::cat({cv, v}, 2) : v;
    k = ck;
    v = cv;
  }
  at::Tensor out = ctx.attention->forward(q, k, v, ctx.mask);
  return out.transpose(1, 2).reshape({B, T, num_heads * head_dim});
}

// --- MLP --------------------------------------------------------------------
LlamaMLPImpl::LlamaMLPImpl(const LlamaConfig& c, const at::TensorOptions& options) {
  const int64_t D = c.hidden_size, F = c.intermediate_size;
  const bool b = c.mlp_bias;
  gate_proj = register_module("gate_proj", std::make_shared<Projection>(D, F, b, options));
  up_proj = register_module("up_proj", std::make_shared<Projection>(D, F, b, options));
  down_proj = register_module("down_proj", std::make_shared<Projection>(F, D, b, options));
}

std::shared_ptr<LinearLayer>& LlamaMLPImpl::projection(const std::string& name) {
  return projection_slot("mlp", name,
                         {{"gate_proj", &gate_proj}, {"up_proj", &up_proj}, {"down_proj", &down_proj}});
}

void LlamaMLPImpl::replace_projection(const std::string& name, std::shared_ptr<LinearLayer> layer) {
  projection(name) = replace_module(name, std::move(layer));
}

at::Tensor LlamaMLPImpl::forward(const at::Tensor& x) { return down_proj->forward(activation(x)); }

at::Tensor LlamaMLPImpl::activation(const at::Tensor& x) {
  // A decoding stream without adapters on gate and up: one GEMV that ends in SwiGLU.
  if (at::Tensor h = gate_up_.swiglu(x, gate_proj.get(), up_proj.get()); h.defined()) return h;
  const auto gate_up = gate_up_.forward(x, {gate_proj.get(), up_proj.get()});  // one GEMM where it can
  // Without adapters on gate and up, SwiGLU reads the GEMM's (..., 2F) output in place.
  return gate_up.whole.defined() ? kernels::swiglu_packed(gate_up.whole)
                                 : kernels::swiglu(gate_up.parts[0], gate_up.parts[1]);
}

at::Tensor LlamaMLPImpl::activation_normed(const at::Tensor& h, const kernels::InputNorm& norm) {
  return gate_up_.swiglu(h, gate_proj.get(), up_proj.get(), norm);
}

// --- decoder layer, model ---------------------------------------------------
LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const LlamaConfig& c, const at::TensorOptions& options,
                                             int64_t layer_index) {
  self_attn = register_module("self_attn", LlamaAttention(c, options, layer_index));
  mlp = register_module("mlp", LlamaMLP(c, options));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, options));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, options));
}

at::Tensor LlamaDecoderLayerImpl::forward(const at::Tensor& x, const ForwardContext& ctx) {
  const auto [h, normed] = post_attention_layernorm->add_forward(x, self_attn->forward(input_layernorm->forward(x), ctx));
  return h + mlp->forward(normed);
}

namespace {
// residual + proj(x) where the projection's GEMV can end in the add (a bare
// Projection, one row); undefined otherwise.
at::Tensor add_projection(LinearLayer& proj, const at::Tensor& x, const at::Tensor& residual) {
  Projection* base = proj.base_projection();
  if (!base || static_cast<LinearLayer*>(base) != &proj) return {};  // an adapter adds its own term
  return base->forward_add_residual(x, residual);
}
}  // namespace

std::pair<at::Tensor, at::Tensor> LlamaDecoderLayerImpl::forward_unsummed(const at::Tensor& x,
                                                                          const at::Tensor& pending,
                                                                          const ForwardContext& ctx) {
  // Attention. x is the whole residual stream when nothing is pending: the q/k/v GEMV
  // may normalise it itself.
  at::Tensor h = x, a;
  if (!pending.defined()) a = self_attn->attend_decoding(x, ctx, input_layernorm->as_input());
  if (!a.defined()) {
    at::Tensor normed;
    std::tie(h, normed) =
        pending.defined() ? input_layernorm->add_forward(x, pending) : std::make_pair(x, input_layernorm->forward(x));
    a = self_attn->attend(normed, ctx);
  }
  // o_proj onto the residual stream, then the MLP's activation of its norm.
  at::Tensor h2 = add_projection(*self_attn->o_proj, a, h), g;
  if (h2.defined()) g = mlp->activation_normed(h2, post_attention_layernorm->as_input());
  if (!g.defined()) {
    at::Tensor normed;
    if (h2.defined()) normed = post_attention_layernorm->forward(h2);
    else std::tie(h2, normed) = post_attention_layernorm->add_forward(h, self_attn->o_proj->forward(a));
    g = mlp->activation(normed);
  }
  // down_proj: onto the residual stream, or left to the next norm's add.
  if (at::Tensor h3 = add_projection(*mlp->down_proj, g, h2); h3.defined()) return {h3, at::Tensor()};
  return {h2, mlp->down_proj->forward(g)};
}

LlamaModelImpl::LlamaModelImpl(const LlamaConfig& c, const at::TensorOptions& options) {
  embed_tokens = register_module("embed_tokens",
                                 std::make_shared<TokenEmbedding>(c.vocab_size, c.hidden_size, options));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layer_list.emplace_back(c, options, i);
    layers->push_back(layer_list.back());
  }
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps, options));
}

at::Tensor LlamaModelImpl::forward(const at::Tensor& input_ids, const ForwardContext& ctx) {
  at::Tensor h = embed_tokens->forward(input_ids);  // (B, T, D)
  if (!layer_runner && !at::GradMode::is_enabled()) {
    // Inference: each layer's last residual add is left to the next norm's kernel (or,
    // for one decoding stream, done by the down projection's GEMV: forward_unsummed).
    at::Tensor pending;
    for (auto& layer : layer_list) std::tie(h, pending) = layer->forward_unsummed(h, pending, ctx);
    return pending.defined() ? norm->add_forward(h, pending).second : norm->forward(h);
  }
  for (auto& layer : layer_list) h = layer_runner ? layer_runner(*layer, h, ctx) : layer->forward(h, ctx);
  return norm->forward(h);
}

// --- causal LM --------------------------------------------------------------
LlamaForCausalLMImpl::LlamaForCausalLMImpl(const LlamaConfig& c, const at::TensorOptions& options)
    : config_(c), rope_(c) {
  model = register_module("model", LlamaModel(c, options));
  if (!c.tie_word_embeddings)
    lm_head = register_module("lm_head",
                              std::make_shared<Projection>(c.hidden_size, c.vocab_size, false, options));
}

at::Device LlamaForCausalLMImpl::device() const { return model->embed_tokens->weight.device(); }

void LlamaForCausalLMImpl::replace_lm_head(std::shared_ptr<LinearLayer> layer) {
  TORCH_INTERNAL_ASSERT(lm_head, "lm_head is tied to the embedding; there is no slot to replace");
  lm_head = replace_module("lm_head", std::move(layer));
}

namespace {
// (V, D) -> (vocab, D): the first rows kept, rows past V set to the mean of the old
// rows (computed in float32, as transformers does).
at::Tensor resized_rows(const at::Tensor& w, int64_t vocab) {
  const int64_t V = w.size(0);
  if (vocab <= V) return w.slice(0, 0, vocab).clone();
  const at::Tensor mean = w.to(at::kFloat).mean(0, /*keepdim=*/true).to(w.scalar_type());  // (1, D)
  return at::cat({w, mean.expand({vocab - V, w.size(1)})}, 0);
}
}  // namespace

void LlamaForCausalLMImpl::resize_vocab(int64_t vocab) {
  TORCH_INTERNAL_ASSERT(vocab > 0, "resize_vocab: vocab must be positive");
  at::NoGradGuard no_grad;
  auto& embed = model->embed_tokens->weight;
  embed.set_data(resized_rows(embed, vocab));
  if (lm_head) {
    auto head = std::dynamic_pointer_cast<Projection>(lm_head);
    TORCH_INTERNAL_ASSERT(head, "resize_vocab: lm_head is wrapped by an adapter; resize before applying one");
    head->weight.set_data(resized_rows(head->weight, vocab));
  }
  config_.vocab_size = vocab;
}

ForwardContext LlamaForCausalLMImpl::context(const Layout& layout) const {
  ForwardContext ctx;
  std::tie(ctx.cos, ctx.sin) = rope_.cos_sin(layout.position_ids, model->embed_tokens->weight.scalar_type());
  ctx.mask = attention::make_attention_mask(attention_settings, layout, attention_backend->needs_dense_mask());
  ctx.attention = attention_backend;
  return ctx;
}

at::Tensor LlamaForCausalLMImpl::hidden_states(const at::Tensor& input_ids, const Layout& layout) {
  return model->forward(input_ids, context(layout));
}

at::Tensor LlamaForCausalLMImpl::logits(const at::Tensor& hidden) const {
  return lm_head ? lm_head->forward(hidden) : at::linear(hidden, model->embed_tokens->weight);
}

at::Tensor LlamaForCausalLMImpl::forward(const at::Tensor& input_ids) {
  const auto layout = sequential_layout(input_ids.size(0), input_ids.size(1), input_ids.device());
  return logits(hidden_states(input_ids, layout));
}

at::Tensor LlamaForCausalLMImpl::forward_cached(const at::Tensor& input_ids, KVCache& cache) {
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  if (cache.k.empty()) {
    cache.k.resize(model->layer_list.size());
    cache.v.resize(model->layer_list.size());
  }
  ForwardContext ctx;
  if (cache.length == 0) {
    // A prefill: the mask of a plain forward pass over positions 0..T-1, so the model's
    // backend applies the rule itself (the flash path on CUDA: no T x T tensor).
    ctx = context(sequential_layout(B, T, input_ids.device()));
  } else {
    at::Tensor pos = at::arange(cache.length, cache.length + T, input_ids.options().dtype(at::kLong));
    // Under "dynamic" RoPE, keys cached earlier keep the scaling of their own step
    // (as in transformers' cache); past max_position_embeddings this departs from a
    // full forward pass over the whole sequence.
    std::tie(ctx.cos, ctx.sin) =
        rope_.cos_sin(pos.unsqueeze(0).expand({B, T}), model->embed_tokens->weight.scalar_type());
    ctx.mask = attention::make_cached_attention_mask(attention_settings, cache.length, T, input_ids.device(),
                                                     /*dense=*/true);  // (no backend computes a cache offset itself)
    ctx.attention = attention_backend;
  }
  ctx.cache = &cache;
  at::Tensor logits_out = logits(model->forward(input_ids, ctx));
  cache.length += T;
  return logits_out;
}

void LlamaForCausalLMImpl::fuse_dense_projections() {
  for (auto& layer : model->layer_list) {
    layer->self_attn->fused_qkv().dense = true;
    layer->mlp->fused_gate_up().dense = true;
  }
}

SlotCache LlamaForCausalLMImpl::make_slot_cache(int64_t slots, int64_t max_len) const {
  const auto& attn = *model->layer_list.front()->self_attn;
  const auto options = model->embed_tokens->weight.options().requires_grad(false);
  SlotCache c;
  for (size_t l = 0; l < model->layer_list.size(); ++l) {
    c.k.push_back(at::zeros({slots, max_len, attn.num_kv_heads, attn.head_dim}, options));
    c.v.push_back(at::zeros({slots, max_len, attn.num_kv_heads, attn.head_dim}, options));
  }
  return c;
}

void LlamaForCausalLMImpl::store_in_slot(const KVCache& from, SlotCache& cache, int64_t slot) const {
  for (size_t l = 0; l < from.k.size(); ++l) {  // (1, Hkv, T, Dh) -> slot's (T, Hkv, Dh)
    cache.k[l][slot].narrow(0, 0, from.length).copy_(from.k[l][0].transpose(0, 1));
    cache.v[l][slot].narrow(0, 0, from.length).copy_(from.v[l][0].transpose(0, 1));
  }
}

at::Tensor LlamaForCausalLMImpl::forward_slots(const at::Tensor& input_ids, const at::Tensor& positions,
                                               SlotCache& cache, int64_t keys) {
  const int64_t B = input_ids.size(0);
  SlotStep step;
  step.cache = &cache;
  step.positions = positions;
  step.keys = keys > 0 ? keys : positions.max().item<int64_t>() + 1;
  ForwardContext ctx;
  std::tie(ctx.cos, ctx.sin) = rope_.cos_sin(positions.view({B, 1}), model->embed_tokens->weight.scalar_type());
  ctx.mask.causal = false;
  ctx.mask.rule = attention_settings;  // kernels::slot_attention applies it
  ctx.slots = &step;
  return logits(model->forward(input_ids, ctx)).select(1, 0);
}

Layout sequential_layout(int64_t B, int64_t T, const at::Device& device) {
  at::Tensor pos = at::arange(T, at::TensorOptions().dtype(at::kLong).device(device));
  return {pos.unsqueeze(0).expand({B, T}), {}};
}

void init_random_weights(LlamaForCausalLMImpl& model, double std) {
  at::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    at::Tensor& p = item.value();
    if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0) p.zero_();
    else if (p.dim() == 1) p.fill_(1.0);  // norms
    else p.normal_(0.0, std);
  }
}

}  // namespace hyft::model
