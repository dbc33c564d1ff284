// hyft doctor: LibTorch, CUDA, cuDNN and NCCL versions and the GPUs with
// their memory; with a GPU it fails when CUDA < 11.8 or cuDNN < 8.6.
#include "commands.h"

#include <ATen/Context.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/csrc/cuda/nccl.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <cstdio>

namespace hyft::app {

namespace {
std::string dotted(long v, long major_div, long minor_div) {
  return std::to_string(v / major_div) + "." + std::to_string(v % major_div / minor_div);
}
}  // namespace

int doctor_command(int argc, char** argv) {
  OptionTable opts(argv[0], "Report LibTorch, CUDA, cuDNN and NCCL versions and the GPUs; fails (exit 1) with a "
                            "GPU when CUDA < 11.8 or cuDNN < 8.6.");
  if (!parse_or_help(opts, argc, argv)) return 0;
  std::printf("LibTorch    %s\n", TORCH_VERSION);
  std::printf("threads     %d (intra-op)\n", at::get_num_threads());
  const bool gpu = torch::cuda::is_available();
  const auto& hooks = at::detail::getCUDAHooks();
  const long cudart = hooks.hasCUDA() ? hooks.versionCUDART() : 0;  // e.g. 13000
  std::printf("CUDA        %s\n", cudart ? dotted(cudart, 1000, 10).c_str() : "not available (CPU only)");
  const long cudnn = gpu && at::globalContext().hasCuDNN() ? at::globalContext().versionCuDNN() : 0;  // e.g. 91400
  std::printf("cuDNN       %s\n", cudnn ? (std::to_string(cudnn / 10000) + "." + std::to_string(cudnn % 10000 / 100) +
                                          "." + std::to_string(cudnn % 100)).c_str()
                                       : "not available");
  std::string nccl = "not available";
  if (gpu) {
    const uint64_t v = torch::cuda::nccl::version();  // major << 32 | minor << 16 | patch
    nccl = std::to_string(v >> 32) + "." + std::to_string((v >> 16) & 0xffff) + "." + std::to_string(v & 0xffff);
  }
  std::printf("NCCL        %s\n", nccl.c_str());
  const size_t n = gpu ? size_t(torch::cuda::device_count()) : 0;
  std::printf("GPUs        %zu\n", n);
  for (size_t i = 0; i < n; ++i) {
    const auto* p = at::cuda::getDeviceProperties(int(i));
    std::printf("  cuda:%zu    %s, %.1f GiB, compute capability %d.%d, %d SMs\n", i, p->name,
                double(p->totalGlobalMem) / double(1ull << 30), p->major, p->minor, p->multiProcessorCount);
  }
  if (!gpu) {
    std::printf("no GPU: hyft runs on the CPU (slowly; fine for tests and tiny models)\n");
    return 0;
  }
  bool ok = true;
  if (cudart < 11080) {
    std::printf("FAIL: CUDA %s is older than 11.8; install a newer driver/toolkit and torch build\n",
                dotted(cudart, 1000, 10).c_str());
    ok = false;
  }
  if (cudnn < 8600) {
    std::printf("FAIL: cuDNN is older than 8.6 (or missing); install cuDNN 8.6 or newer\n");
    ok = false;
  }
  std::printf("%s\n", ok ? "ok" : "problems found");
  return ok ? 0 : 1;
}

}  // namespace hyft::app
