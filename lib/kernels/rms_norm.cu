// RMSNorm over rows of D, optionally fused with the residual add before it, for
// inference (no autograd): one thread block a row, two passes over the row (the
// second reads it back from L1/L2). References: at::rms_norm (one rounding, of the
// output), and h = x + d in T for the fused add.
//   h      = T(x + d)                          (when d is given; written out)
//   y[i]   = T(h[i] * r * w[i]),  r = 1 / sqrt(mean(h^2) + eps), sums in float32
// The arithmetic is rms_norm_row.cuh's, which quantized_gemv.cu's NORM shares.
#include "kernels/rms_norm_row.cuh"

namespace hyft::kernels::cuda {

namespace {

template <typename T, int VEC>
__global__ void rms_norm_kernel(const T* __restrict__ x, const T* __restrict__ d, const T* __restrict__ w,
                                T* __restrict__ h, T* __restrict__ y, int64_t dim, float eps) {
  __shared__ float partial[kNormThreads / 32];
  wait_for_prior_grids();
  allow_dependents();
  const int64_t row = blockIdx.x;
  const T* xr = x + row * dim;
  const T* dr = d ? d + row * dim : nullptr;
  T* hr = h ? h + row * dim : nullptr;
  float sumsq = 0.0f;
  for (int64_t i = int64_t(threadIdx.x) * VEC; i < dim; i += int64_t(kNormThreads) * VEC) {
    Vec<T, VEC> v = load<T, VEC>(xr + i);
    if (dr) {
      const Vec<T, VEC> dv = load<T, VEC>(dr + i);
#pragma unroll
      for (int k = 0; k < VEC; ++k) v.v[k] = from_float<T>(to_float(v.v[k]) + to_float(dv.v[k]));
      store<T, VEC>(hr + i, v);
    }
    sumsq = add_squares(sumsq, v);
  }
  const float r = rms_scale(sumsq, partial, dim, eps);  // its __syncthreads makes this block's h visible
  const T* src = dr ? hr : xr;
  T* yr = y + row * dim;
  for (int64_t i = int64_t(threadIdx.x) * VEC; i < dim; i += int64_t(kNormThreads) * VEC) {
    store<T, VEC>(yr + i, rms_scaled(load<T, VEC>(src + i), load<T, VEC>(w + i), r));
  }
}

}  // namespace

void rms_norm(const void* x, const void* d, const void* w, void* h, void* y, int64_t rows, int64_t dim, float eps,
              DType dtype, cudaStream_t stream) {
  if (rows == 0) return;
  dispatch(dtype, [&](auto zero) {
    using T = decltype(zero);
    constexpr int V = vec16<T>();
    const auto *xp = static_cast<const T*>(x), *dp = static_cast<const T*>(d), *wp = static_cast<const T*>(w);
    auto *hp = static_cast<T*>(h), *yp = static_cast<T*>(y);
    const bool vec = dim % V == 0 && aligned16(xp) && aligned16(wp) && aligned16(yp) && (!dp || aligned16(dp)) &&
                     (!hp || aligned16(hp));
    if (vec)
      launch_dependent(rms_norm_kernel<T, V>, unsigned(rows), kNormThreads, stream, xp, dp, wp, hp, yp, dim, eps);
    else
      launch_dependent(rms_norm_kernel<T, 1>, unsigned(rows), kNormThreads, stream, xp, dp, wp, hp, yp, dim, eps);
    check_launch("rms_norm");
  });
}

}  // namespace hyft::kernels::cuda
