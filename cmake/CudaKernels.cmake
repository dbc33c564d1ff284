# hyft's own CUDA kernels (lib/kernels/*.cu) are built when LibTorch has CUDA and
# nvcc is found; otherwise (or with -DHYFT_CUDA_KERNELS=OFF) the fused operations
# run their ATen references. HYFT_CUDA_ARCHITECTURES picks the GPUs compiled for
# (90: Hopper, H100/H200; add 80 for A100, e.g. -DHYFT_CUDA_ARCHITECTURES="80;90").

option(HYFT_CUDA_KERNELS "Build hyft's CUDA kernels when LibTorch has CUDA and nvcc is found" ON)
set(HYFT_CUDA_ARCHITECTURES "90" CACHE STRING "CUDA architectures of hyft's kernels")
set(HYFT_HAVE_CUDA_KERNELS OFF)
if(HYFT_CUDA_KERNELS AND TORCH_CUDA_LIBRARIES)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    # LibTorch's config adds -gencode flags for every GPU the wheel supports (old
    # ones included, which nvcc 13 refuses); hyft's kernels take CUDA_ARCHITECTURES.
    string(REGEX REPLACE "-gencode[ =]arch=[^ ]+" "" CMAKE_CUDA_FLAGS "${CMAKE_CUDA_FLAGS}")
    set(HYFT_HAVE_CUDA_KERNELS ON)
  endif()
endif()
message(STATUS "hyft: CUDA kernels ${HYFT_HAVE_CUDA_KERNELS} (architectures ${HYFT_CUDA_ARCHITECTURES})")
