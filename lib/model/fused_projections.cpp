#include "model/fused_projections.h"

#include "kernels/fused_ops.h"
#include "model/llama.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>

namespace hyft::model {

namespace {
const char* fusion_setting() {
  const char* v = std::getenv("HYFT_FUSED_PROJECTIONS");
  return v ? v : "";
}

bool fusion_allowed() {
  static const bool allowed = std::strcmp(fusion_setting(), "0") != 0;
  return allowed;
}

// A base that can share a buffer: frozen, no bias.
bool frozen_without_bias(const Projection& p) { return !p.bias.defined() && !p.weight.requires_grad(); }
}  // namespace

bool FusedProjections::fuse_dense = std::strcmp(fusion_setting(), "dense") == 0;

bool FusedProjections::current(const std::vector<Projection*>& bases) const {
  if (bases != bases_ || !fused()) return false;
  for (size_t i = 0; i < bases.size(); ++i) {
    const Projection& p = *bases[i];
    if (!frozen_without_bias(p)) return false;
    const void* mark = quantized_    ? static_cast<const void*>(p.quantized.get())
                       : p.quantized ? nullptr
                                     : p.weight.data_ptr();
    if (mark != marks_[i]) return false;
  }
  return true;
}

bool FusedProjections::build(const std::vector<Projection*>& bases) {
  bases_.clear();
  marks_.clear();
  slices_.clear();
  outs_.clear();
  weight_ = at::Tensor();
  quantized_.reset();
  for (const Projection* p : bases)
    if (!p || !frozen_without_bias(*p)) return false;
  at::NoGradGuard no_grad;
  const Projection& first = *bases.front();
  if (!first.quantized && !fuse_dense && !dense) return false;  // dense bases apart unless asked (the header says why)
  if (first.quantized) {
    std::vector<const quant::QuantizedWeight*> parts;
    for (const Projection* p : bases) {
      if (!p->quantized) return false;
      parts.push_back(p->quantized.get());
    }
    if (!quant::can_stack(parts)) return false;
    quantized_ = std::make_shared<const quant::QuantizedWeight>(quant::stack_rows(parts));
    int64_t row = 0;
    for (Projection* p : bases) {
      const int64_t rows = p->quantized->rows();
      p->quantized = std::make_shared<const quant::QuantizedWeight>(quant::row_slice(*quantized_, row, rows));
      slices_.push_back(p->quantized);
      marks_.push_back(p->quantized.get());
      outs_.push_back(rows);
      row += rows;
    }
  } else {
    std::vector<at::Tensor> weights;
    for (const Projection* p : bases) {
      const at::Tensor& w = p->weight;
      if (p->quantized || !w.defined() || w.dim() != 2 || w.size(1) != first.weight.size(1) ||
          w.scalar_type() != first.weight.scalar_type() || w.device() != first.weight.device())
        return false;
      weights.push_back(w);
    }
    weight_ = at::cat(weights, 0);  // (sum of outs, in)
    weights.clear();
    int64_t row = 0;
    for (Projection* p : bases) {
      const int64_t rows = p->weight.size(0);
      p->weight.set_data(weight_.narrow(0, row, rows));  // the old storage is freed here
      marks_.push_back(p->weight.data_ptr());
      outs_.push_back(rows);
      row += rows;
    }
  }
  bases_ = bases;
  return true;
}

FusedProjections::Output FusedProjections::forward(const at::Tensor& x, std::initializer_list<LinearLayer*> slots) {
  Output out;
  std::vector<Projection*> bases;
  for (LinearLayer* s : slots) bases.push_back(s->base_projection());
  const bool fused_now = fusion_allowed() && (current(bases) || build(bases));
  if (!fused_now) {
    for (LinearLayer* s : slots) out.parts.push_back(s->forward(x));
    return out;
  }
  const at::Tensor y =
      quantized_ ? quant::quantized_linear(x, *quantized_, {}) : kernels::linear_inference(x, weight_, {});
  // Column slices by split_with_sizes: their gradients meet in one concatenation.
  const std::vector<at::Tensor> cols = at::split_with_sizes(y, outs_, -1);
  bool bare = true;
  size_t i = 0;
  for (LinearLayer* s : slots) {
    out.parts.push_back(s->forward_over(x, cols[i]));
    bare = bare && out.parts.back().is_same(cols[i]);
    ++i;
  }
  if (bare) out.whole = y;
  return out;
}

bool FusedProjections::epilogue_allowed(const at::Tensor& x, std::initializer_list<LinearLayer*> slots) {
  const bool one_row = x.dim() > 0 && x.numel() == x.size(-1);  // the kernels take one row; ask nothing else
  if (!kernels::gemv_epilogues_on() || !one_row || at::GradMode::is_enabled() || !fusion_allowed()) return false;
  std::vector<Projection*> bases;
  for (LinearLayer* s : slots) {
    if (s->base_projection() != s) return false;  // an adapter: its term needs the base's output
    bases.push_back(s->base_projection());
  }
  return current(bases) || build(bases);
}

at::Tensor FusedProjections::swiglu(const at::Tensor& x, LinearLayer* gate, LinearLayer* up,
                                    const kernels::InputNorm& norm) {
  if (!epilogue_allowed(x, {gate, up})) return {};
  return quantized_ ? quant::quantized_gemv_swiglu(x, *quantized_, norm)
                    : kernels::linear_swiglu_inference(x, weight_, norm);
}

at::Tensor FusedProjections::rotary_slot_write(const at::Tensor& x, std::initializer_list<LinearLayer*> slots,
                                               const kernels::SlotWrite& t, const kernels::InputNorm& norm) {
  if (!epilogue_allowed(x, slots)) return {};
  return quantized_ ? quant::quantized_gemv_rotary_slot_write(x, *quantized_, t, norm)
                    : kernels::linear_rotary_slot_write(x, weight_, t, norm);
}

}  // namespace hyft::model
