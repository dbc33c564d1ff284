// LlamaForCausalLM as LibTorch modules whose parameter names are exactly
// the Hugging Face keys (model.layers.N.self_attn.q_proj.weight, ...), so loading
// is a shape-checked identity copy. Shapes: B batch, T tokens, D hidden, H heads,
// Hkv key/value heads, Dh head dim, F MLP width, V vocabulary, L layers.
// Parameters are allocated uninitialised; weights come from load_pretrained or
// init_random_weights.
#pragma once

#include "attention/backend.h"
#include "model/fused_projections.h"
#include "model/llama_config.h"
#include "model/rope.h"
#include "quant/quantized_linear.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <functional>

namespace hyft::model {

class Projection;

// Anything that maps (..., in) to (..., out): the slot a projection sits in (the
// seven projections of a layer and lm_head). The model's own is Projection;
// adapters/ put a wrapper in the same slot.
class LinearLayer : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& x) = 0;
  // The frozen projection whose output forward() builds on: the Projection itself,
  // an adapter's base; null when there is none. Several slots of one input (q/k/v,
  // gate/up) have their bases computed by one GEMM (model/fused_projections.h)...
  virtual Projection* base_projection() { return nullptr; }
  // ...and each slot then finishes from it: forward(x) given y = base(x) (a Projection
  // returns y, LoRA adds its term).
  virtual at::Tensor forward_over(const at::Tensor& x, const at::Tensor& y);
};

// y = x W^T + b, W (out, in), b (out,) optional. Keys: weight, bias. A frozen
// base may keep W quantized instead (`quantized` set, `weight` emptied; --quantize).
class Projection : public LinearLayer {
 public:
  Projection(int64_t in, int64_t out, bool bias, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x) override;
  Projection* base_projection() override { return this; }
  at::Tensor forward_over(const at::Tensor& x, const at::Tensor& y) override;
  // Replaces W by its quantized form (frees the dense weight).
  void quantize(quant::Format format);
  // W itself, or dequantized.
  at::Tensor dense_weight() const;
  // residual + forward(x) as one kernel (the single-row GEMV ending in the add:
  // kernels::linear_add_residual, quant's for a quantized W) for one row of x without
  // autograd and without a bias; undefined where it does not apply or
  // HYFT_GEMV_EPILOGUES=0.
  at::Tensor forward_add_residual(const at::Tensor& x, const at::Tensor& residual);
  at::Tensor weight, bias;
  std::shared_ptr<const quant::QuantizedWeight> quantized;
};

// y = weight * x / sqrt(mean(x^2) + eps), computed in float32 then cast back.
// The reference rounds to x's dtype before the weight, as transformers does.
at::Tensor rms_norm_reference(const at::Tensor& x, const at::Tensor& weight, double eps);

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);
  // {h = x + d, forward(h)}: the residual add and the norm after it (one kernel in
  // inference on CUDA).
  std::pair<at::Tensor, at::Tensor> add_forward(const at::Tensor& x, const at::Tensor& d);
  // This norm as a GEMV applies it on the way in (kernels::InputNorm).
  kernels::InputNorm as_input() const { return {weight, eps}; }
  at::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// Token embedding: weight (V, D); forward is a row lookup.
class TokenEmbedding : public torch::nn::Module {
 public:
  TokenEmbedding(int64_t vocab, int64_t dim, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& ids);  // (B, T) -> (B, T, D)
  at::Tensor weight;
};

// Keys and values of the tokens seen so far, per layer (B, Hkv, Tpast, Dh):
// generation feeds only the new tokens and attends over the cache.
struct KVCache {
  std::vector<at::Tensor> k, v;
  int64_t length = 0;  // tokens cached
};

// The keys and values of several sequences at once, allocated once: per layer
// (S, Tmax, Hkv, Dh), one slot a sequence (continuous batching, generate/engine.h).
struct SlotCache {
  std::vector<at::Tensor> k, v;
  int64_t slots() const { return k.empty() ? 0 : k[0].size(0); }
  int64_t max_len() const { return k.empty() ? 0 : k[0].size(1); }
};

// One decoding step over slots 0..B-1: row b's new token goes to position
// positions[b] of slot b, and attention reads the slot's first `keys` keys.
struct SlotStep {
  SlotCache* cache = nullptr;
  at::Tensor positions;  // (B,) long
  int64_t keys = 0;
};

// Which adapter each row of a batch uses, for projections that hold several
// (adapters/multi_lora.h): (B,) long on the model's device, -1 for none;
// undefined: none. Whoever runs the forward pass fills it first (generate/engine).
struct RowAdapters {
  at::Tensor rows;
};

// Per-forward context shared by every layer: rotary tables and the attention mask.
struct ForwardContext {
  at::Tensor cos, sin;  // (B, T, Dh)
  attention::AttentionMask mask;
  const attention::AttentionBackend* attention = &attention::sdpa_backend();
  KVCache* cache = nullptr;          // when set, attention appends to it and reads all of it
  const SlotStep* slots = nullptr;   // when set, attention writes into and reads from the slots
};

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  LlamaAttentionImpl(const LlamaConfig& c, const at::TensorOptions& options, int64_t layer_index = 0);
  at::Tensor forward(const at::Tensor& x, const ForwardContext& ctx);  // (B, T, D) -> (B, T, D)
  // The attention before o_proj: (B, T, D) -> (B, T, H*Dh).
  at::Tensor attend(const at::Tensor& x, const ForwardContext& ctx);
  // The same for a decoding stream over the slots (one row) whose q/k/v bases are bare
  // and fused: one GEMV that ends in RoPE and the cache write (and, with norm's weight
  // given, x is the residual stream that it normalises on the way in); undefined
  // where that kernel does not apply.
  at::Tensor attend_decoding(const at::Tensor& x, const ForwardContext& ctx, const kernels::InputNorm& norm = {});
  // The projection slots, registered as q_proj, k_proj, v_proj, o_proj.
  std::shared_ptr<LinearLayer>& projection(const std::string& name);
  void replace_projection(const std::string& name, std::shared_ptr<LinearLayer> layer);
  FusedProjections& fused_qkv() { return qkv_; }

  std::shared_ptr<LinearLayer> q_proj, k_proj, v_proj, o_proj;
  int64_t num_heads, num_kv_heads, head_dim, layer_index;

 private:
  FusedProjections qkv_;  // q, k, v bases as one GEMM
};
TORCH_MODULE(LlamaAttention);

class LlamaMLPImpl : public torch::nn::Module {
 public:
  LlamaMLPImpl(const LlamaConfig& c, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);     // down(silu(gate(x)) * up(x))
  at::Tensor activation(const at::Tensor& x);  // silu(gate(x)) * up(x): (B, T, D) -> (B, T, F)
  // activation(norm(h)) as one kernel for one row of the residual stream h (the fused
  // gate/up GEMV normalising on the way in); undefined where it does not apply.
  at::Tensor activation_normed(const at::Tensor& h, const kernels::InputNorm& norm);
  std::shared_ptr<LinearLayer>& projection(const std::string& name);
  void replace_projection(const std::string& name, std::shared_ptr<LinearLayer> layer);
  FusedProjections& fused_gate_up() { return gate_up_; }

  std::shared_ptr<LinearLayer> gate_proj, up_proj, down_proj;

 private:
  FusedProjections gate_up_;  // gate and up bases as one GEMM
};
TORCH_MODULE(LlamaMLP);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  LlamaDecoderLayerImpl(const LlamaConfig& c, const at::TensorOptions& options, int64_t layer_index = 0);
  at::Tensor forward(const at::Tensor& x, const ForwardContext& ctx);
  // Inference: the same layer over the input x + pending (pending undefined: x), its
  // output returned as {h, d} with h + d left for the next norm to add in its own
  // kernel (RMSNormImpl::add_forward): one launch a layer less. For one row (a
  // decoding stream) the single-row GEMVs take both jobs where they can: the o and
  // down projections end in their residual add (d then undefined) and the q/k/v and
  // gate/up GEMVs apply the norm before them on the way in: no norm kernel at all.
  std::pair<at::Tensor, at::Tensor> forward_unsummed(const at::Tensor& x, const at::Tensor& pending,
                                                     const ForwardContext& ctx);

  LlamaAttention self_attn{nullptr};
  LlamaMLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

class LlamaModelImpl : public torch::nn::Module {
 public:
  LlamaModelImpl(const LlamaConfig& c, const at::TensorOptions& options);
  // input_ids (B, T) -> hidden states after the final norm (B, T, D).
  at::Tensor forward(const at::Tensor& input_ids, const ForwardContext& ctx);

  // How each decoder layer is run: directly when unset; the trainer sets it to
  // run layers under gradient checkpointing.
  using LayerRunner = std::function<at::Tensor(LlamaDecoderLayerImpl&, const at::Tensor&, const ForwardContext&)>;
  LayerRunner layer_runner;

  std::shared_ptr<TokenEmbedding> embed_tokens;
  torch::nn::ModuleList layers;
  RMSNorm norm{nullptr};
  std::vector<LlamaDecoderLayer> layer_list;  // typed views of `layers`
};
TORCH_MODULE(LlamaModel);

class LlamaForCausalLMImpl : public torch::nn::Module {
 public:
  LlamaForCausalLMImpl(const LlamaConfig& c, const at::TensorOptions& options);

  // Rotary tables and mask for a batch laid out as `layout`.
  ForwardContext context(const attention::Layout& layout) const;
  // input_ids (B, T) -> final hidden states (B, T, D).
  at::Tensor hidden_states(const at::Tensor& input_ids, const attention::Layout& layout);
  // hidden (..., D) -> logits (..., V) in the model's dtype, through lm_head's slot
  // (so an adapter on lm_head takes part), or the embedding when tied.
  at::Tensor logits(const at::Tensor& hidden) const;
  // input_ids (B, T) -> logits (B, T, V); positions 0..T-1 in every row.
  at::Tensor forward(const at::Tensor& input_ids);
  // New tokens (B, Tnew) after cache->length cached ones -> logits (B, Tnew, V);
  // the cache grows by Tnew. Rows share one length (no padding).
  at::Tensor forward_cached(const at::Tensor& input_ids, KVCache& cache);
  // A slotted cache of `slots` sequences of up to `max_len` tokens, zeroed.
  SlotCache make_slot_cache(int64_t slots, int64_t max_len) const;
  // For decoding: every layer's dense q/k/v and gate/up bases fused too (model/
  // fused_projections.h), on the next forward pass.
  void fuse_dense_projections();
  // Copies a sequence's cache (batch 1, from forward_cached) into `slot`.
  void store_in_slot(const KVCache& from, SlotCache& cache, int64_t slot) const;
  // One new token per row, row b in slot b: input_ids (B, 1) at positions (B,) ->
  // logits (B, V). Every position below a row's is that slot's sequence. `keys`:
  // the keys each row may read (> every position; 0: computed, a device sync).
  at::Tensor forward_slots(const at::Tensor& input_ids, const at::Tensor& positions, SlotCache& cache,
                           int64_t keys = 0);

  at::Device device() const;  // where the weights are
  const LlamaConfig& config() const { return config_; }
  attention::HybridSettings attention_settings;  // the hybrid rule; full causal by default
  const attention::AttentionBackend* attention_backend = &attention::sdpa_backend();

  LlamaModel model{nullptr};
  std::shared_ptr<LinearLayer> lm_head;  // the output projection's slot; null when tied to the embedding
  void replace_lm_head(std::shared_ptr<LinearLayer> layer);

  // A vocabulary of `vocab` tokens, as transformers' resize_token_embeddings
  // (mean_resizing): embed_tokens and lm_head (V, D) grow or shrink to (vocab, D),
  // new rows are the mean of the old rows. Before any adapter wraps lm_head.
  void resize_vocab(int64_t vocab);

 private:
  LlamaConfig config_;
  RotaryEmbedding rope_;
};
TORCH_MODULE(LlamaForCausalLM);

// Positions 0..T-1 for every row of a (B, T) batch.
attention::Layout sequential_layout(int64_t B, int64_t T, const at::Device& device);

// Fills every weight as transformers' _init_weights does (normal(0, std) for
// matrices and embeddings, zeros for biases, ones for norms), from the current seed.
void init_random_weights(LlamaForCausalLMImpl& model, double std = 0.02);

}  // namespace hyft::model
