# Several processes (lib/distributed): c10d's process groups live in LibTorch, but
# their headers include the headers of the libraries underneath, which the torch
# wheel does not ship. gloo (CPU runs, the CPU tests): Debian's libgloo-dev gives
# the headers; only declarations are used, every symbol resolves in LibTorch (which
# carries its own gloo), so libgloo itself is never linked. NCCL (GPU runs):
# nccl.h of the nvidia-nccl wheel beside torch (the NCCL LibTorch runs with), else
# the CUDA toolkit's. Without them the code builds and a run of several processes
# stops with an error saying what to install.

find_path(HYFT_GLOO_INCLUDE_DIR gloo/algorithm.h)
set(HYFT_HAVE_GLOO OFF)
if(HYFT_GLOO_INCLUDE_DIR)
  set(HYFT_HAVE_GLOO ON)
endif()

set(HYFT_HAVE_NCCL OFF)
if(TORCH_CUDA_LIBRARIES)
  get_filename_component(_hyft_torch_dir "${TORCH_INSTALL_PREFIX}" ABSOLUTE)
  find_path(HYFT_NCCL_INCLUDE_DIR nccl.h
    HINTS "${_hyft_torch_dir}/../nvidia/nccl/include" "${CUDAToolkit_INCLUDE_DIRS}" /usr/local/cuda/include
    NO_DEFAULT_PATH)
  find_path(HYFT_NCCL_INCLUDE_DIR nccl.h)
  if(HYFT_NCCL_INCLUDE_DIR)
    set(HYFT_HAVE_NCCL ON)
  endif()
endif()
message(STATUS "hyft: several processes over gloo ${HYFT_HAVE_GLOO} (${HYFT_GLOO_INCLUDE_DIR}), "
               "NCCL ${HYFT_HAVE_NCCL} (${HYFT_NCCL_INCLUDE_DIR})")
