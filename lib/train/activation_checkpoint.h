// Gradient checkpointing for one decoder layer: the forward pass keeps
// only the layer's input; the backward pass runs the layer again with the same
// autocast state and the same random numbers (dropout), then back-propagates
// through the recomputed graph, which also fills the parameters' gradients.
#pragma once

#include "model/llama.h"

namespace hyft::train {

// out = layer(x, ctx), recomputed in the backward pass. x (B, T, D) must require
// grad (the caller makes the embedding output a leaf that does) so that the
// backward pass reaches the layer at all.
at::Tensor checkpointed_layer(model::LlamaDecoderLayerImpl& layer, const at::Tensor& x,
                              const model::ForwardContext& ctx);

}  // namespace hyft::train
