#include "distributed/communicator.h"

#include "common/error.h"

// c10d's process groups are compiled only when their libraries' headers are there
// (cmake/Distributed.cmake): gloo's headers for the CPU, NCCL's for CUDA. The
// defines must come before c10d's headers, which test them.
#if defined(HYFT_HAVE_GLOO) && !defined(USE_C10D_GLOO)
#define USE_C10D_GLOO
#endif
#if defined(HYFT_HAVE_NCCL) && !defined(USE_C10D_NCCL)
#define USE_C10D_NCCL
#endif
#include <ATen/ATen.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef HYFT_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef HYFT_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace hyft::dist {

struct Communicator::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  const char* name = "";
};

namespace {

// The library's message without its stack: the first line, at most 300 characters.
std::string first_line(const std::exception& e) {
  const std::string what = e.what();
  return what.substr(0, std::min(what.find('\n'), size_t(300)));
}

c10::intrusive_ptr<c10d::Store> join_store(const LaunchEnv& e, std::chrono::seconds timeout) {
  c10d::TCPStoreOptions o;
  o.port = uint16_t(e.master_port);
  o.timeout = timeout;
  // torchrun's agent already serves the store: every rank is a client, under the
  // key prefix of this attempt (as torch.distributed's env:// does).
  o.isServer = !e.agent_store && e.rank == 0;
  if (!e.agent_store) o.numWorkers = size_t(e.world);
  o.waitWorkers = !e.agent_store;
  try {
    auto tcp = c10::make_intrusive<c10d::TCPStore>(e.master_addr, o);
    if (e.agent_store)
      return c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + std::to_string(e.restart_count), tcp);
    return tcp;
  } catch (const std::exception& ex) {
    fail("rank ", e.rank, " of ", e.world, " could not join the run at ", e.master_addr, ":", e.master_port,
         " within ", timeout.count(), " s (", first_line(ex), "); check that every rank was started, that the port is free "
         "and reachable (MASTER_ADDR/MASTER_PORT, --rdzv-endpoint), or raise --dist-timeout");
  }
}

// Waits for a collective; a failure (a rank that died, or no answer within the
// timeout) becomes one plain message instead of the library's.
void wait_for(const c10::intrusive_ptr<c10d::Work>& work, const LaunchEnv& e, const char* what) {
  try {
    work->wait();
  } catch (const std::exception& ex) {
    throw std::runtime_error("rank " + std::to_string(e.rank) + " of " + std::to_string(e.world) + ": " + what +
                             " failed: another process died or did not answer in time (" + first_line(ex) +
                             "); the run stops. Continue it with --resume (from the newest checkpoint)");
  }
}

}  // namespace

Communicator::Communicator(const LaunchEnv& env, at::Device device, std::chrono::seconds timeout)
    : env_(env), device_(device), impl_(std::make_unique<Impl>()) {
  if (device.is_cuda())  // this rank's GPU is the current one: kernels, NCCL and the caching allocator use it
    c10::impl::getDeviceGuardImpl(c10::kCUDA)->setDevice(device);
  impl_->store = c10::make_intrusive<c10d::PrefixStore>("hyft", join_store(env, timeout));
  // HYFT_DIST_BACKEND=gloo runs CUDA tensors over gloo (through host memory):
  // slower, but several processes may then share one GPU (NCCL refuses that).
  const char* forced = std::getenv("HYFT_DIST_BACKEND");
  HYFT_CHECK(!forced || !*forced || std::string(forced) == "nccl" || std::string(forced) == "gloo",
             "HYFT_DIST_BACKEND='", forced, "': use nccl or gloo (or leave it unset)");
  const bool use_nccl = device.is_cuda() && !(forced && std::string(forced) == "gloo");
  if (use_nccl) {
#ifdef HYFT_HAVE_NCCL
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = timeout;
    impl_->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world, o);
    impl_->name = "nccl";
#else
    fail("this hyft was built without NCCL's header (nccl.h), so it cannot train on several GPUs; rebuild where "
         "nccl.h is found (the nvidia-nccl wheel beside torch, or the CUDA toolkit)");
#endif
  } else {
#ifdef HYFT_HAVE_GLOO
    auto o = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* iface = std::getenv("GLOO_SOCKET_IFNAME");
    if (iface && *iface)
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    else if (env.local_world == env.world)  // one node: the loopback
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    impl_->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world, o);
    impl_->name = "gloo";
#else
    fail("this hyft was built without gloo's headers, so it cannot run several CPU processes; install them "
         "(Debian: libgloo-dev) and rebuild, or train on GPUs (NCCL)");
#endif
  }
}

Communicator::~Communicator() = default;

const char* Communicator::backend_name() const { return impl_->name; }

void Communicator::all_reduce_sum(at::Tensor& tensor) { all_reduce_sum_async(tensor).wait(); }

PendingCollective Communicator::all_reduce_sum_async(at::Tensor tensor) {
  std::vector<at::Tensor> list{std::move(tensor)};
  auto work = impl_->backend->allreduce(list, c10d::AllreduceOptions());
  return PendingCollective([work, this] { wait_for(work, env_, "summing over the processes"); });
}

std::vector<double> Communicator::sum(const std::vector<double>& values) {
  at::Tensor t = at::tensor(values, at::kDouble).to(device_);
  all_reduce_sum(t);
  t = t.cpu();
  return {t.data_ptr<double>(), t.data_ptr<double>() + t.numel()};
}

int64_t Communicator::max(int64_t value) {
  at::Tensor t = at::tensor({value}, at::kLong).to(device_);
  std::vector<at::Tensor> list{t};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::MAX;
  wait_for(impl_->backend->allreduce(list, o), env_, "agreeing with the other processes");
  return t.cpu().item<int64_t>();
}

void Communicator::broadcast(std::vector<at::Tensor>& tensors) {
  for (auto& t : tensors) {
    std::vector<at::Tensor> list{t};
    wait_for(impl_->backend->broadcast(list, c10d::BroadcastOptions()), env_, "receiving rank 0's weights");
  }
}

void Communicator::barrier() {
  at::Tensor t = at::zeros({1}, at::TensorOptions(at::kFloat).device(device_));
  all_reduce_sum(t);
  if (device_.is_cuda()) t.cpu();  // waits for the device too
}

std::vector<std::vector<uint8_t>> Communicator::all_gather_bytes(const std::string& key,
                                                                  const std::vector<uint8_t>& mine) {
  std::vector<std::vector<uint8_t>> out;
  try {
    impl_->store->set(key + "/" + std::to_string(rank()), mine);
    for (int r = 0; r < world(); ++r) out.push_back(impl_->store->get(key + "/" + std::to_string(r)));
  } catch (const std::exception& ex) {
    throw std::runtime_error("rank " + std::to_string(rank()) + ": exchanging state through the store (" + key +
                             ") failed: another process died or did not answer in time (" + first_line(ex) + ")");
  }
  return out;
}

}  // namespace hyft::dist
