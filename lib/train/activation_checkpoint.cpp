#include "train/activation_checkpoint.h"

#include "common/error.h"
#include "train/autocast.h"
#include "train/rng_state.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

namespace hyft::train {

Checkpointing parse_checkpointing(const std::string& text, const std::string& flag) {
  if (text == "full" || text == "true" || text == "1") return Checkpointing::Full;
  if (text == "selective") return Checkpointing::Selective;
  if (text == "off" || text == "false" || text == "0") return Checkpointing::Off;
  fail(flag, ": '", text, "' is not a checkpointing mode; use full, selective or off");
}

const char* checkpointing_name(Checkpointing c) {
  switch (c) {
    case Checkpointing::Full: return "full";
    case Checkpointing::Selective: return "selective";
    case Checkpointing::Off: break;
  }
  return "off";
}

bool checkpoints_layer(Checkpointing mode, int64_t index) {
  return mode == Checkpointing::Full || (mode == Checkpointing::Selective && index % 2 == 0);
}

namespace {

// What the recompute needs, carried through ctx->saved_data as a capsule.
struct Recompute : torch::CustomClassHolder {
  model::LlamaDecoderLayerImpl* layer = nullptr;
  model::ForwardContext ctx;  // keeps the rotary tables and mask alive until backward
  at::Tensor cpu_rng, device_rng;  // dropout's random state at the forward pass
  at::Device device = at::kCPU;
  bool autocast_on = false;
  c10::ScalarType autocast_dtype = c10::kFloat;
};

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* actx, at::Tensor x,
                            c10::intrusive_ptr<Recompute> state) {
    state->device = x.device();
    state->cpu_rng = get_rng_state(at::kCPU);
    if (x.is_cuda()) state->device_rng = get_rng_state(x.device());
    state->autocast_on = at::autocast::is_autocast_enabled(x.device().type());
    state->autocast_dtype = at::autocast::get_autocast_dtype(x.device().type());
    actx->save_for_backward({x});
    actx->saved_data["state"] = c10::IValue::make_capsule(state);
    at::NoGradGuard no_grad;
    return state->layer->forward(x, state->ctx);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* actx,
                                                 torch::autograd::variable_list grad_out) {
    const auto holder = actx->saved_data["state"].toCapsule();
    auto* state = static_cast<Recompute*>(holder.get());
    const at::Tensor x = actx->get_saved_variables()[0].detach().requires_grad_(true);

    // Replay with the forward's random state, then put the current one back.
    const at::Tensor cpu_now = get_rng_state(at::kCPU);
    const at::Tensor device_now = state->device_rng.defined() ? get_rng_state(state->device) : at::Tensor();
    set_rng_state(at::kCPU, state->cpu_rng);
    if (device_now.defined()) set_rng_state(state->device, state->device_rng);
    at::Tensor out;
    {
      at::AutoGradMode grad(true);
      AutocastGuard autocast(state->device.type(), state->autocast_dtype, state->autocast_on);
      out = state->layer->forward(x, state->ctx);
    }
    set_rng_state(at::kCPU, cpu_now);
    if (device_now.defined()) set_rng_state(state->device, device_now);
    torch::autograd::backward({out}, {grad_out[0]});
    return {x.grad(), at::Tensor()};
  }
};

}  // namespace

at::Tensor checkpointed_layer(model::LlamaDecoderLayerImpl& layer, const at::Tensor& x,
                              const model::ForwardContext& ctx) {
  auto state = c10::make_intrusive<Recompute>();
  state->layer = &layer;
  state->ctx = ctx;
  // A frozen embedding gives an input without grad; the backward pass must still
  // reach this layer for its trainable parameters.
  const at::Tensor input = x.requires_grad() ? x : x.detach().requires_grad_(true);
  return CheckpointFunction::apply(input, state);
}

}  // namespace hyft::train
