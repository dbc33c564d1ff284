// RMSNorm over rows of D, optionally fused with the residual add before it, for
// inference (no autograd): one thread block a row (rms_norm_row.cuh: two passes over
// the row, the second reading it back from L1/L2). References: at::rms_norm (one
// rounding, of the output), and h = x + d in T for the fused add.
//   h      = T(x + d)                          (when d is given; written out)
//   y[i]   = T(h[i] * r * w[i]),  r = 1 / sqrt(mean(h^2) + eps), sums in float32
#include "kernels/rms_norm_row.cuh"

namespace hyft::kernels::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads)
    rms_norm_kernel(const T* __restrict__ x, const T* __restrict__ d, const T* __restrict__ w, T* __restrict__ h,
                    T* __restrict__ y, int64_t dim, float eps) {
  wait_for_prior_grids();
  allow_dependents();
  const int64_t row = blockIdx.x;
  add_rms_norm_row<T, VEC, kThreads>(x + row * dim, d ? d + row * dim : nullptr, w, h ? h + row * dim : nullptr,
                                     y + row * dim, dim, eps);
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
      launch_dependent(rms_norm_kernel<T, V>, unsigned(rows), kThreads, stream, xp, dp, wp, hp, yp, dim, eps);
    else
      launch_dependent(rms_norm_kernel<T, 1>, unsigned(rows), kThreads, stream, xp, dp, wp, hp, yp, dim, eps);
    check_launch("rms_norm");
  });
}

}  // namespace hyft::kernels::cuda
