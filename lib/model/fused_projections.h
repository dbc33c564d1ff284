// Projections of one input run as one GEMM: a layer's q/k/v, and its gate/up.
// The frozen base weights of the slots become rows of one (sum of outs, in) buffer
// (each Projection's `weight` a view into it, so memory is unchanged and loading,
// saving and named parameters see the same tensors; or, for a quantized base, each
// projection's codes views into stacked codes), x W^T is one GEMM (a decoding step:
// one GEMV), and each slot gets its column slice through forward_over, so LoRA
// still adds its term on its own projection and PEFT files do not change.
//
// The buffer is built on first use (without autograd) and built again whenever a
// base no longer views it (a weight replaced by set_data, quantized, moved); slots
// whose bases cannot share one (trainable, with a bias, different shapes or
// dtypes, nf4-dq) run one by one, as they do with HYFT_FUSED_PROJECTIONS=0 in the
// environment (the reference, for A/B runs). Quantized bases are always fused; dense
// ones where the owner asks (`dense`: the decoding engine, whose single-row GEMVs
// gain from it) or everywhere with fuse_dense below.
#pragma once

#include "kernels/fused_ops.h"
#include "quant/quantized_linear.h"

#include <ATen/core/Tensor.h>

#include <initializer_list>
#include <memory>
#include <vector>

namespace hyft::model {

class LinearLayer;
class Projection;

class FusedProjections {
 public:
  struct Output {
    std::vector<at::Tensor> parts;  // each slot's forward(x), in order
    // (..., sum of outs) when every part is its column slice as it is (no adapter
    // on any slot): a consumer may read this one tensor instead (kernels::swiglu_packed).
    at::Tensor whole;
  };
  Output forward(const at::Tensor& x, std::initializer_list<LinearLayer*> slots);

  // silu(gate(x)) * up(x) as one kernel (the GEMV over the fused bases, ending in
  // SwiGLU) for one row of x without autograd, when both slots are bare projections
  // (no adapter) and their bases fuse; undefined otherwise: the caller runs forward()
  // and kernels::swiglu. HYFT_GEMV_EPILOGUES=0 in the environment: always undefined.
  // With norm's weight given, x is the residual stream and the kernel applies the norm
  // on the way in (kernels::InputNorm); undefined where it cannot.
  at::Tensor swiglu(const at::Tensor& x, LinearLayer* gate, LinearLayer* up, const kernels::InputNorm& norm = {});
  // A decoding stream's q/k/v as one kernel (the GEMV over the fused bases, ending in
  // RoPE and the slot cache write, kernels::linear_rotary_slot_write): the rotated q
  // (1, 1, H, Dh), on the same terms as swiglu; undefined otherwise.
  at::Tensor rotary_slot_write(const at::Tensor& x, std::initializer_list<LinearLayer*> slots,
                               const kernels::SlotWrite& t, const kernels::InputNorm& norm = {});

  // Whether the slots' bases are fused now (for tests and benchmarks).
  bool fused() const { return weight_.defined() || quantized_ != nullptr; }

  // Whether dense (not quantized) bases are fused here: set for decoding
  // (LlamaForCausalLMImpl::fuse_dense_projections), where a stream then runs one
  // single-row GEMV instead of three (or two). Off by default: in training one cuBLAS
  // GEMM over the stacked weights measured no faster than three (8b +0.7%, 1.3b -0.3%;
  // BENCHMARKS.md), and its other order of sums would make a run's numbers depend on
  // whether it had evaluated or decoded before.
  bool dense = false;
  // The same for every FusedProjections: HYFT_FUSED_PROJECTIONS=dense in the
  // environment (to measure training with it), and the tests of the mechanism.
  static bool fuse_dense;

 private:
  bool current(const std::vector<Projection*>& bases) const;
  bool build(const std::vector<Projection*>& bases);
  // Whether the GEMVs with epilogues may run for x: one row, grad mode off,
  // HYFT_GEMV_EPILOGUES not 0, every slot its bare base, and the bases fused now (built
  // if need be).
  bool epilogue_allowed(const at::Tensor& x, std::initializer_list<LinearLayer*> slots);

  std::vector<Projection*> bases_;
  // What each base held once fused: its weight's data (inside weight_), or its codes
  // (kept alive in slices_, so no later weight can reuse the address).
  std::vector<const void*> marks_;
  std::vector<std::shared_ptr<const quant::QuantizedWeight>> slices_;
  std::vector<int64_t> outs_;       // rows of each base
  at::Tensor weight_;               // (sum of outs, in), dense bases
  std::shared_ptr<const quant::QuantizedWeight> quantized_;  // quantized bases
};

}  // namespace hyft::model
