// Data-parallel gradients: the sum over ranks of what trains, once per optimizer
// step, overlapped with the backward pass. The parameters are grouped in buckets
// (flat float buffers, in the reverse of their order, which is about the order the
// backward pass finishes them); each parameter's .grad is a view into its bucket,
// so accumulation over micro-batches lands there. On the last micro-batch of a
// step, a hook after each parameter's accumulation counts it; a full bucket is
// summed over the ranks at once (buckets start in index order on every rank, as
// the collectives must), while the backward pass goes on with the next layers.
// Earlier micro-batches reduce nothing.
#pragma once

#include "distributed/communicator.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace hyft::dist {

class GradientReducer {
 public:
  // `params`: contiguous leaves that require grad, in registration order.
  // bucket_bytes 0: about eight buckets, each 1 to 25 MiB (25 MiB as torch's
  // DistributedDataParallel; a LoRA adapter of a few MiB still gets several, so
  // its sums overlap the backward pass too).
  GradientReducer(Communicator& comm, std::vector<at::Tensor> params, int64_t bucket_bytes = 0);
  ~GradientReducer();  // removes the hooks
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before each micro-batch's backward pass: `last` reduces as buckets fill.
  void begin_micro_batch(bool last);
  // After the last backward pass: starts the buckets that did not fill (a
  // parameter without a gradient), waits for all; every .grad then holds the sum.
  void finish();
  // Zeroes the buckets (the .grad views stay).
  void zero();

  int64_t bucket_count() const { return int64_t(buckets_.size()); }

  // Called by the hooks; not for other callers.
  void parameter_ready(size_t param);

 private:
  struct Bucket {
    at::Tensor buffer;  // (numel of its parameters,)
    int64_t members = 0, ready = 0;
    PendingCollective pending;
  };
  void launch_ready();

  Communicator& comm_;
  std::vector<at::Tensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // per parameter
  std::vector<char> ready_;        // per parameter, this step
  size_t next_launch_ = 0;
  bool sync_ = false;
};

}  // namespace hyft::dist
