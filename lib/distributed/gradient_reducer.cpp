#include "distributed/gradient_reducer.h"

#include "common/error.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>

namespace hyft::dist {

namespace {

// Runs after AccumulateGrad has added a micro-batch's gradient into .grad.
struct ReadyHook : torch::autograd::PostAccumulateGradHook {
  ReadyHook(GradientReducer* reducer, size_t param) : reducer(reducer), param(param) {}
  void operator()(const torch::autograd::Variable&) override { reducer->parameter_ready(param); }
  GradientReducer* reducer;
  size_t param;
};

}  // namespace

GradientReducer::GradientReducer(Communicator& comm, std::vector<at::Tensor> params, int64_t bucket_bytes)
    : comm_(comm), params_(std::move(params)) {
  if (bucket_bytes <= 0) {
    int64_t total = 0;
    for (const auto& p : params_) total += p.numel() * int64_t(p.element_size());
    bucket_bytes = std::clamp<int64_t>(total / 8, int64_t(1) << 20, int64_t(25) << 20);
  }
  // Buckets in reverse order, one dtype and device each, up to bucket_bytes.
  std::vector<std::vector<size_t>> members;
  int64_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const at::Tensor& p = params_[k];
    TORCH_INTERNAL_ASSERT(p.requires_grad() && p.is_leaf() && p.is_contiguous(), "reducer: bad parameter");
    const int64_t b = p.numel() * int64_t(p.element_size());
    const bool fits = !members.empty() && bytes + b <= bucket_bytes &&
                      params_[members.back().front()].dtype() == p.dtype();
    if (!fits) {
      members.emplace_back();
      bytes = 0;
    }
    members.back().push_back(k);
    bytes += b;
  }
  at::NoGradGuard no_grad;
  bucket_of_.resize(params_.size());
  ready_.assign(params_.size(), 0);
  for (size_t i = 0; i < members.size(); ++i) {
    int64_t numel = 0;
    for (size_t k : members[i]) numel += params_[k].numel();
    Bucket bucket;
    bucket.buffer = at::zeros({numel}, params_[members[i].front()].options().requires_grad(false));
    bucket.members = int64_t(members[i].size());
    int64_t offset = 0;
    for (size_t k : members[i]) {
      at::Tensor& p = params_[k];
      at::Tensor view = bucket.buffer.narrow(0, offset, p.numel()).view(p.sizes());
      if (p.grad().defined()) view.copy_(p.grad());
      p.mutable_grad() = view;
      offset += p.numel();
      bucket_of_[k] = i;
      torch::autograd::impl::set_post_acc_grad_hooks(p, std::make_unique<ReadyHook>(this, k));
    }
    buckets_.push_back(std::move(bucket));
  }
}

GradientReducer::~GradientReducer() {
  for (auto& p : params_) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
}

void GradientReducer::begin_micro_batch(bool last) { sync_ = last; }

void GradientReducer::parameter_ready(size_t param) {
  if (!sync_) return;
  const size_t bucket = bucket_of_[param];
  // A second gradient after its bucket was sent would be lost: a parameter used in
  // two separate backward passes of one micro-batch cannot be reduced this way.
  TORCH_INTERNAL_ASSERT(bucket >= next_launch_, "gradient reducer: a parameter's gradient arrived after its bucket "
                        "was summed over the ranks");
  if (ready_[param]) return;
  ready_[param] = 1;
  ++buckets_[bucket].ready;
  launch_ready();
}

void GradientReducer::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready >= buckets_[next_launch_].members) {
    Bucket& b = buckets_[next_launch_++];
    b.pending = comm_.all_reduce_sum_async(b.buffer);
  }
}

void GradientReducer::finish() {
  for (auto& b : buckets_) b.ready = b.members;  // a parameter the step did not reach: its zeros are summed too
  launch_ready();
  for (auto& b : buckets_) {
    b.pending.wait();
    b.ready = 0;
  }
  std::fill(ready_.begin(), ready_.end(), 0);
  next_launch_ = 0;
  sync_ = false;
}

void GradientReducer::zero() {
  at::NoGradGuard no_grad;
  for (auto& b : buckets_) b.buffer.zero_();
}

}  // namespace hyft::dist
