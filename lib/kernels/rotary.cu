// Rotary position embedding applied in one pass (llm.c's rope.cu, in the
// rotate-half layout of Llama). Reference: model::apply_rotary,
// x * cos + rotate_half(x) * sin with rotate_half(x) = [-x2, x1].
//   forward   o1 = x1 c1 - x2 s1        o2 = x2 c2 + x1 s2
//   backward  d1 = g1 c1 + g2 s2        d2 = g2 c2 - g1 s1   (the transpose)
// x (rows, H, Dh) with rows `x_stride` elements apart (H * Dh when contiguous; more
// for q or k read in place from the fused q/k/v output), out (rows, H, Dh)
// contiguous, cos/sin (rows, Dh), rows = B*T; arithmetic in float32, one rounding
// per output. One thread per VEC consecutive pairs (i, i + Dh/2) of one head.
// rotary_decode: a decoding step's q and k at once, k (and v) written straight into
// the serving cache (reference: rotary on each, then the cache write).
#include "kernels/cuda_common.cuh"

namespace hyft::kernels::cuda {

namespace {

// VEC pairs (x[j], x[j + half]) of one head, j from xp, rotated into op; cp, sp at
// the same j of the row's cos and sin.
template <typename T, int VEC, bool BACKWARD>
__device__ __forceinline__ void rotate_pairs(const T* xp, const T* cp, const T* sp, T* op, int half) {
  const Vec<T, VEC> x1 = load<T, VEC>(xp), x2 = load<T, VEC>(xp + half);
  const Vec<T, VEC> c1 = load<T, VEC>(cp), c2 = load<T, VEC>(cp + half);
  const Vec<T, VEC> s1 = load<T, VEC>(sp), s2 = load<T, VEC>(sp + half);
  Vec<T, VEC> o1, o2;
#pragma unroll
  for (int k = 0; k < VEC; ++k) {
    const float a = to_float(x1.v[k]), b = to_float(x2.v[k]);
    if (BACKWARD) {
      o1.v[k] = from_float<T>(a * to_float(c1.v[k]) + b * to_float(s2.v[k]));
      o2.v[k] = from_float<T>(b * to_float(c2.v[k]) - a * to_float(s1.v[k]));
    } else {
      o1.v[k] = from_float<T>(a * to_float(c1.v[k]) - b * to_float(s1.v[k]));
      o2.v[k] = from_float<T>(b * to_float(c2.v[k]) + a * to_float(s2.v[k]));
    }
  }
  store<T, VEC>(op, o1);
  store<T, VEC>(op + half, o2);
}

template <typename T, int VEC, bool BACKWARD>
__global__ void rotary_kernel(const T* __restrict__ x, const T* __restrict__ cos, const T* __restrict__ sin,
                              T* __restrict__ out, int64_t rows, int heads, int head_dim, int64_t x_stride) {
  const int half = head_dim / 2, groups = half / VEC;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= rows * heads * groups) return;
  const int i = int(idx % groups) * VEC;  // first pair index of this thread
  const int64_t row_head = idx / groups;  // (row, head)
  const int64_t row = row_head / heads;
  const T* xp = x + row * x_stride + (row_head - row * heads) * head_dim + i;
  rotate_pairs<T, VEC, BACKWARD>(xp, cos + row * head_dim + i, sin + row * head_dim + i, out + row_head * head_dim + i,
                                 half);
}

template <typename T, int VEC>
void launch_rotary(const T* x, const T* cos, const T* sin, T* out, int64_t rows, int heads, int head_dim,
                   int64_t x_stride, bool backward, cudaStream_t stream) {
  const int threads = 256;
  const unsigned blocks = blocks_for(rows * heads * (head_dim / 2 / VEC), threads);
  if (backward)
    rotary_kernel<T, VEC, true><<<blocks, threads, 0, stream>>>(x, cos, sin, out, rows, heads, head_dim, x_stride);
  else
    rotary_kernel<T, VEC, false><<<blocks, threads, 0, stream>>>(x, cos, sin, out, rows, heads, head_dim, x_stride);
  check_launch("rotary");
}

// Decoding: one new token per row. Threads over (row, head of q then of k, pair
// group): q's heads are rotated into q_out; k's are rotated into the row's cache slot
// at its position, and the same thread copies the matching elements of v there too.
template <typename T, int VEC>
__global__ void rotary_decode_kernel(RotaryDecodeArgs a) {
  wait_for_prior_grids();
  allow_dependents();
  const int half = int(a.head_dim) / 2, groups = half / VEC, heads = int(a.heads + a.kv_heads);
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= a.rows * heads * groups) return;
  const int i = int(idx % groups) * VEC;
  const int head = int((idx / groups) % heads);
  const int64_t row = idx / groups / heads;
  const bool is_q = head < a.heads;
  const int h = is_q ? head : head - int(a.heads);
  const T* xp = is_q ? static_cast<const T*>(a.q) + row * a.q_stride + h * a.head_dim + i
                     : static_cast<const T*>(a.k) + row * a.k_stride + h * a.head_dim + i;
  const int64_t slot = (row * a.max_len + a.positions[row]) * a.kv_heads + h;  // (S, Tmax, Hkv) index
  T* op = is_q ? static_cast<T*>(a.q_out) + (row * a.heads + h) * a.head_dim + i
               : static_cast<T*>(a.k_cache) + slot * a.head_dim + i;
  rotate_pairs<T, VEC, false>(xp, static_cast<const T*>(a.cos) + row * a.head_dim + i,
                              static_cast<const T*>(a.sin) + row * a.head_dim + i, op, half);
  if (!is_q) {
    const T* vp = static_cast<const T*>(a.v) + row * a.v_stride + h * a.head_dim + i;
    T* vo = static_cast<T*>(a.v_cache) + slot * a.head_dim + i;
    store<T, VEC>(vo, load<T, VEC>(vp));
    store<T, VEC>(vo + half, load<T, VEC>(vp + half));
  }
}

}  // namespace

void rotary_decode(const RotaryDecodeArgs& a, cudaStream_t stream) {
  if (a.rows == 0) return;
  dispatch(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    constexpr int V = vec16<T>();
    const bool vec = (a.head_dim / 2) % V == 0 && a.q_stride % V == 0 && a.k_stride % V == 0 && a.v_stride % V == 0 &&
                     aligned16(a.q) && aligned16(a.k) && aligned16(a.v) && aligned16(a.cos) && aligned16(a.sin) &&
                     aligned16(a.q_out) && aligned16(a.k_cache) && aligned16(a.v_cache);
    const int threads = 256;
    const int64_t pairs = a.rows * (a.heads + a.kv_heads) * (a.head_dim / 2);
    if (vec) launch_dependent(rotary_decode_kernel<T, V>, blocks_for(pairs / V, threads), threads, stream, a);
    else launch_dependent(rotary_decode_kernel<T, 1>, blocks_for(pairs, threads), threads, stream, a);
    check_launch("rotary_decode");
  });
}

void rotary(const void* x, const void* cos, const void* sin, void* out, int64_t rows, int64_t heads,
            int64_t head_dim, int64_t x_stride, bool backward, DType dtype, cudaStream_t stream) {
  dispatch(dtype, [&](auto zero) {
    using T = decltype(zero);
    constexpr int V = vec16<T>();
    const bool vec = (head_dim / 2) % V == 0 && x_stride % V == 0 && aligned16(x) && aligned16(cos) &&
                     aligned16(sin) && aligned16(out);
    auto* o = static_cast<T*>(out);
    const auto *xi = static_cast<const T*>(x), *ci = static_cast<const T*>(cos), *si = static_cast<const T*>(sin);
    if (vec) launch_rotary<T, V>(xi, ci, si, o, rows, int(heads), int(head_dim), x_stride, backward, stream);
    else launch_rotary<T, 1>(xi, ci, si, o, rows, int(heads), int(head_dim), x_stride, backward, stream);
  });
}

}  // namespace hyft::kernels::cuda
