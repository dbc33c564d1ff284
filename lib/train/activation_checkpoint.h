// Gradient checkpointing for one decoder layer: the forward pass keeps
// only the layer's input; the backward pass runs the layer again with the same
// autocast state and the same random numbers (dropout), then back-propagates
// through the recomputed graph, which also fills the parameters' gradients.
#pragma once

#include "model/llama.h"

namespace hyft::train {

// Which decoder layers run under checkpointing: none (off), every one (full), or
// every second one (selective: the even-numbered layers; about half the
// activation memory of off and half the recompute of full).
enum class Checkpointing { Off, Full, Selective };
// "full"/"true"/"1", "selective", "off"/"false"/"0"; else a UserError naming `flag`.
Checkpointing parse_checkpointing(const std::string& text, const std::string& flag);
const char* checkpointing_name(Checkpointing c);
// Whether layer `index` is recomputed under `mode`.
bool checkpoints_layer(Checkpointing mode, int64_t index);

// out = layer(x, ctx), recomputed in the backward pass. x (B, T, D) must require
// grad (the caller makes the embedding output a leaf that does) so that the
// backward pass reaches the layer at all.
at::Tensor checkpointed_layer(model::LlamaDecoderLayerImpl& layer, const at::Tensor& x,
                              const model::ForwardContext& ctx);

}  // namespace hyft::train
