#include "recipes/processes.h"

#include "common/error.h"
#include "common/runtime.h"

#include <torch/cuda.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace hyft::recipes {

std::unique_ptr<dist::Communicator> join_processes(std::string& device, int64_t timeout_s) {
  const dist::LaunchEnv env = dist::launch_env();
  if (!env.distributed()) return nullptr;
  HYFT_CHECK(device == "auto" || device == "cuda" || device == "cpu", "--device ", device, ": with several "
             "processes each one takes the GPU of its LOCAL_RANK; pass --device cuda (or auto, or cpu)");
  const bool gpu = device == "cuda" || (device == "auto" && parse_device("auto").is_cuda());
  int gpu_index = env.local_rank;
  if (gpu) {
    const int gpus = int(torch::cuda::device_count());
    const char* backend = std::getenv("HYFT_DIST_BACKEND");
    const bool shared = backend && std::string(backend) == "gloo";  // gloo lets processes share a GPU; NCCL does not
    HYFT_CHECK(env.local_rank < gpus || shared, env.local_world, " processes on this node but ", gpus,
               " GPU(s) visible: start one process a GPU (torchrun --nproc-per-node ", gpus, ")");
    gpu_index = env.local_rank % gpus;
  }
  device = gpu ? "cuda:" + std::to_string(gpu_index) : "cpu";
  if (env.rank > 0 && !std::freopen("/dev/null", "w", stdout)) std::perror("hyft: rank > 0: stdout");
  auto comm = std::make_unique<dist::Communicator>(env, parse_device(device), std::chrono::seconds(timeout_s));
  std::printf("%d processes (%s, launched by %s); rank 0 on %s writes the outputs\n", env.world,
              comm->backend_name(), env.launcher.c_str(), device.c_str());
  return comm;
}

}  // namespace hyft::recipes
