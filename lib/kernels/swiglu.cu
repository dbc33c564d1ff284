// SwiGLU, the activation of Llama's MLP, in one pass each way (Liger's swiglu).
// Reference: at::silu(gate) * up.
//   forward   out = silu(g) u,  silu(g) = g s,  s = sigmoid(g)
//   backward  d_up = dout silu(g),  d_gate = dout u s (1 + g (1 - s))
// Arithmetic in float32, one rounding per output; VEC elements per thread.
// gate and up are (rows, cols) with a row stride of their own (`stride` elements):
// two separate tensors (stride = cols), or the two halves of one (rows, 2 cols)
// GEMM output (the gate and up projections fused, stride = 2 cols); out and dout
// are (rows, cols) contiguous. A block covers kThreads * VEC columns of a row and
// strides over the rows by the grid's height.
#include "kernels/cuda_common.cuh"

#include <algorithm>

namespace hyft::kernels::cuda {

namespace {

template <typename T, int VEC>
__global__ void swiglu_forward_kernel(const T* __restrict__ gate, const T* __restrict__ up, T* __restrict__ out,
                                      int64_t rows, int64_t cols, int64_t stride) {
  wait_for_prior_grids();
  allow_dependents();
  const int64_t c = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * VEC;
  if (c >= cols) return;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const Vec<T, VEC> g = load<T, VEC>(gate + r * stride + c), u = load<T, VEC>(up + r * stride + c);
    Vec<T, VEC> o;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const float gf = to_float(g.v[k]);
      o.v[k] = from_float<T>(swiglu_value(gf, to_float(u.v[k])));
    }
    store<T, VEC>(out + r * cols + c, o);
  }
}

template <typename T, int VEC>
__global__ void swiglu_backward_kernel(const T* __restrict__ dout, const T* gate, const T* up, T* d_gate, T* d_up,
                                       int64_t rows, int64_t cols, int64_t stride) {
  const int64_t c = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * VEC;
  if (c >= cols) return;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const int64_t i = r * stride + c;
    const Vec<T, VEC> d = load<T, VEC>(dout + r * cols + c), g = load<T, VEC>(gate + i), u = load<T, VEC>(up + i);
    Vec<T, VEC> dg, du;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const float gf = to_float(g.v[k]), df = to_float(d.v[k]), s = sigmoid(gf);
      du.v[k] = from_float<T>(df * gf * s);
      dg.v[k] = from_float<T>(df * to_float(u.v[k]) * s * (1.0f + gf * (1.0f - s)));
    }
    store<T, VEC>(d_gate + i, dg);
    store<T, VEC>(d_up + i, du);
  }
}

constexpr int kThreads = 256;
constexpr int64_t kMaxGridRows = 65535;  // gridDim.y's limit

dim3 grid_for(int64_t rows, int64_t cols, int vec) {
  return dim3(blocks_for((cols + vec - 1) / vec, kThreads), unsigned(std::min(rows, kMaxGridRows)));
}

}  // namespace

void swiglu_forward(const void* gate, const void* up, void* out, int64_t rows, int64_t cols, int64_t stride,
                    DType dtype, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  dispatch(dtype, [&](auto zero) {
    using T = decltype(zero);
    constexpr int V = vec16<T>();
    const auto *g = static_cast<const T*>(gate), *u = static_cast<const T*>(up);
    auto* o = static_cast<T*>(out);
    if (cols % V == 0 && stride % V == 0 && aligned16(g) && aligned16(u) && aligned16(o))
      launch_dependent(swiglu_forward_kernel<T, V>, grid_for(rows, cols, V), kThreads, stream, g, u, o, rows, cols, stride);
    else
      launch_dependent(swiglu_forward_kernel<T, 1>, grid_for(rows, cols, 1), kThreads, stream, g, u, o, rows, cols, stride);
    check_launch("swiglu_forward");
  });
}

void swiglu_backward(const void* dout, const void* gate, const void* up, void* d_gate, void* d_up, int64_t rows,
                     int64_t cols, int64_t stride, DType dtype, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  dispatch(dtype, [&](auto zero) {
    using T = decltype(zero);
    constexpr int V = vec16<T>();
    const auto *d = static_cast<const T*>(dout), *g = static_cast<const T*>(gate), *u = static_cast<const T*>(up);
    auto *dg = static_cast<T*>(d_gate), *du = static_cast<T*>(d_up);
    if (cols % V == 0 && stride % V == 0 && aligned16(d) && aligned16(g) && aligned16(u) && aligned16(dg) &&
        aligned16(du))
      swiglu_backward_kernel<T, V><<<grid_for(rows, cols, V), kThreads, 0, stream>>>(d, g, u, dg, du, rows, cols,
                                                                                     stride);
    else
      swiglu_backward_kernel<T, 1><<<grid_for(rows, cols, 1), kThreads, 0, stream>>>(d, g, u, dg, du, rows, cols,
                                                                                     stride);
    check_launch("swiglu_backward");
  });
}

}  // namespace hyft::kernels::cuda
