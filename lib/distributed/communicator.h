// The processes of a data-parallel run and what they say to each other: joins
// the rendezvous (c10d's TCPStore at MASTER_ADDR:MASTER_PORT), then talks through
// NCCL when the run is on CUDA and through gloo on the CPU (c10d's process groups
// from LibTorch; HYFT_DIST_BACKEND=gloo takes gloo on CUDA too). Sums of tensors (blocking or overlapped), a barrier, a
// broadcast from rank 0, and small byte strings exchanged through the store.
// A collective that waits past the timeout fails the process with a message, so a
// rank that dies or hangs never leaves the others waiting for ever.
#pragma once

#include "distributed/launch_env.h"

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace hyft::dist {

// A collective in flight; wait() makes the caller's stream (or thread) wait for it.
class PendingCollective {
 public:
  PendingCollective() = default;
  explicit PendingCollective(std::function<void()> wait) : wait_(std::move(wait)) {}
  void wait() {
    if (wait_) std::exchange(wait_, nullptr)();
  }

 private:
  std::function<void()> wait_;
};

class Communicator {
 public:
  // Joins the run `env` describes; `device` is this rank's (cuda:LOCAL_RANK, or
  // the CPU). Collectives and the rendezvous give up after `timeout`.
  Communicator(const LaunchEnv& env, at::Device device, std::chrono::seconds timeout);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return env_.rank; }
  int world() const { return env_.world; }
  bool is_main() const { return env_.rank == 0; }
  const LaunchEnv& env() const { return env_; }
  const char* backend_name() const;

  // Sums `tensor` (on this rank's device) over the ranks, in place.
  void all_reduce_sum(at::Tensor& tensor);
  PendingCollective all_reduce_sum_async(at::Tensor tensor);
  // Sums of a few numbers (counts, losses) over the ranks.
  std::vector<double> sum(const std::vector<double>& values);
  int64_t max(int64_t value);
  // Rank 0's values into every rank's tensors.
  void broadcast(std::vector<at::Tensor>& tensors);
  void barrier();
  // Every rank's bytes, in rank order, on every rank; `key` names the exchange
  // and must differ between exchanges of one run.
  std::vector<std::vector<uint8_t>> all_gather_bytes(const std::string& key, const std::vector<uint8_t>& mine);

 private:
  struct Impl;
  LaunchEnv env_;
  at::Device device_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hyft::dist
