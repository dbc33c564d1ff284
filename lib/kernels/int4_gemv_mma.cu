// y (m, rows) = x (m, cols) W^T for INT4 weights (quant/formats.h: blocks of 64,
// float16 scale s and minimum mn, w = c s + mn) and 1-8 rows of bf16 or fp16 x, on
// the tensor cores. The CUDA-core GEMV (quantized_gemv.cu) spends about three
// instructions a weight and reads the codes at ~2 TB/s; here a code costs about one.
// Reference: dequantize W to T, then at::linear (kernels_check compares them).
//
// mma.sync m16n8k16, float32 accumulators: A = 16 rows of W x 16 columns, the codes
// under T's exponent, M + c (M = 128 for bf16, 1024 for fp16; exact in T); B = the
// same 16 columns x 8 rows of x (rows past m zero); a second product with A = 1 gives
// X, the sum of x over the columns. Per scale block of 64 columns (four products each):
//   sum_k c_k x_k = D - M X,   y[n][row] += s D + (mn - M s) X
// so W is never rounded to T (as in the CUDA-core kernel; the check's bounds allow it).
//
// A warp owns 16 rows (a tile): lane l holds rows l/4 and l/4 + 8 and, of every
// block, the 16 columns 16 (l % 4) .. + 15: 8 bytes of codes a row. The product
// sums over its 16 k in any order, so each lane's codes are paired as bit operations
// give them (the codes in bits s and s + 16 of a 32-bit word, under T's exponent of
// 128 or 1024) and x is paired the same way (a byte permutation). Tiles of rows are
// split over a block's warps by columns when there are too few to fill the GPU, their
// sums added in shared memory. Shapes: rows % 16 == 0, cols % 256 == 0 (four blocks
// a round), else the caller takes the CUDA-core kernel.
#include "kernels/cuda_common.cuh"
#include "kernels/quantized_common.cuh"

#include <cstdint>

namespace hyft::kernels::cuda {

namespace {

constexpr int kWarps = 8;
constexpr int kRoundBlocks = 4;  // scale blocks (of 64 columns) a round

// T's bits: M, the power of two under which a 4-bit code fills the low mantissa bits
// exactly (bf16 128, fp16 1024), as a pair, and its value; 1.0 as a pair.
template <typename T> struct Bits;
template <> struct Bits<__nv_bfloat16> {
  static constexpr uint32_t kMagic = 0x43004300u, kOne = 0x3F803F80u;
  static constexpr float kMagicValue = 128.0f;
};
template <> struct Bits<__half> {
  static constexpr uint32_t kMagic = 0x64006400u, kOne = 0x3C003C00u;
  static constexpr float kMagicValue = 1024.0f;
};

// The codes in bits s..s+3 and s+16..s+19 of `u` as a pair of T: (M + c, M + c').
template <typename T>
__device__ __forceinline__ uint32_t code_pair(uint32_t u, int s) {
  return ((u >> s) & 0x000F000Fu) | Bits<T>::kMagic;
}

// d += A B (m16n8k16, float32 accumulators).
template <typename T>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// One scale block: the lane's 16 codes of row r (cr) and of row r + 8 (cr8), x's
// 16 values at the same columns (xw, 8 pairs in column order; zero past m). Step t
// takes the columns {b, b+4} and {b+1, b+5}, b = 0, 2, 8, 10: the pairs code_pair
// gives for s = 4, 0, 12, 8 of the first word, then of the second.
template <typename T>
__device__ __forceinline__ void block_products(const uint2& cr, const uint2& cr8, const uint32_t (&xw)[8],
                                               float (&dc)[4], float (&dx)[4]) {
  constexpr int kShift[4][2] = {{4, 0}, {12, 8}, {4, 0}, {12, 8}};
  constexpr int kWord[4] = {0, 1, 4, 5};  // x's pair holding column b (and b+1)
#pragma unroll
  for (int t = 0; t < 4; ++t) {
    const uint32_t ur = t < 2 ? cr.x : cr.y, ur8 = t < 2 ? cr8.x : cr8.y;
    const uint32_t a[4] = {code_pair<T>(ur, kShift[t][0]), code_pair<T>(ur8, kShift[t][0]),
                           code_pair<T>(ur, kShift[t][1]), code_pair<T>(ur8, kShift[t][1])};
    const uint32_t w0 = xw[kWord[t]], w2 = xw[kWord[t] + 2];  // (x_b, x_b+1), (x_b+4, x_b+5)
    const uint32_t b0 = __byte_perm(w0, w2, 0x5410u), b1 = __byte_perm(w0, w2, 0x7632u);
    mma<T>(dc, a, b0, b1);
    const uint32_t ones[4] = {Bits<T>::kOne, Bits<T>::kOne, Bits<T>::kOne, Bits<T>::kOne};
    mma<T>(dx, ones, b0, b1);
  }
}

template <typename T, int SPLIT>
__global__ void __launch_bounds__(kWarps * 32)
    int4_gemv_mma_kernel(QuantizedView w, const T* __restrict__ x, T* __restrict__ y, int m) {
  constexpr int GROUPS = kWarps / SPLIT;  // tiles of 16 rows a block
  __shared__ float partial[kWarps][32][4];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int group = warp / SPLIT, part = warp % SPLIT;
  const int r = lane / 4, g = lane % 4;  // rows r and r + 8 of the tile; columns 16g.. of a block
  const int64_t tile = int64_t(blockIdx.x) * GROUPS + group;
  const bool live = tile * 16 < w.rows;  // a block's last tiles may fall past the end
  const int64_t row = (live ? tile * 16 : 0) + r;
  const int64_t cols = w.cols, nblocks = cols / 64, rounds = nblocks / kRoundBlocks;
  const uint8_t* codes_r = static_cast<const uint8_t*>(w.codes) + row * (cols / 2) + 8 * g;
  const uint8_t* codes_r8 = codes_r + 8 * (cols / 2);
  const __half* scale = static_cast<const __half*>(w.scale);
  const __half* minimum = static_cast<const __half*>(w.minimum);

  // A round: kRoundBlocks blocks of the two rows' codes, loaded a round ahead.
  auto load_round = [&](int64_t round, uint2 (&cr)[kRoundBlocks], uint2 (&cr8)[kRoundBlocks]) {
    if (round >= rounds) return;
#pragma unroll
    for (int k = 0; k < kRoundBlocks; ++k) {
      const int64_t off = (round * kRoundBlocks + k) * 32;
      cr[k] = __ldg(reinterpret_cast<const uint2*>(codes_r + off));
      cr8[k] = __ldg(reinterpret_cast<const uint2*>(codes_r8 + off));
    }
  };
  uint2 cr[kRoundBlocks], cr8[kRoundBlocks];
  load_round(part, cr, cr8);  // frozen weights: before the kernel ahead has finished
  wait_for_prior_grids();      // x comes from the kernel ahead
  allow_dependents();

  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // (row r, x row 2g), (r, 2g+1), (r+8, 2g), (r+8, 2g+1)
  const bool has_x = r < m;                 // this lane's B column: x row r
  const T* xr = x + int64_t(has_x ? r : 0) * cols + 16 * g;
  for (int64_t round = part; round < rounds; round += SPLIT) {
    uint2 nr[kRoundBlocks], nr8[kRoundBlocks];
    load_round(round + SPLIT, nr, nr8);
    // The scales and minima of the round's blocks for rows r and r + 8 (4 halves each).
    const int64_t b0 = round * kRoundBlocks;
    const uint2 s_r = __ldg(reinterpret_cast<const uint2*>(scale + row * nblocks + b0));
    const uint2 s_r8 = __ldg(reinterpret_cast<const uint2*>(scale + (row + 8) * nblocks + b0));
    const uint2 m_r = __ldg(reinterpret_cast<const uint2*>(minimum + row * nblocks + b0));
    const uint2 m_r8 = __ldg(reinterpret_cast<const uint2*>(minimum + (row + 8) * nblocks + b0));
#pragma unroll
    for (int k = 0; k < kRoundBlocks; ++k) {
      uint32_t xw[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      if (has_x) {
        const uint4 lo = *reinterpret_cast<const uint4*>(xr + (b0 + k) * 64);
        const uint4 hi = *reinterpret_cast<const uint4*>(xr + (b0 + k) * 64 + 8);
        xw[0] = lo.x, xw[1] = lo.y, xw[2] = lo.z, xw[3] = lo.w, xw[4] = hi.x, xw[5] = hi.y, xw[6] = hi.z, xw[7] = hi.w;
      }
      float dc[4] = {0.0f, 0.0f, 0.0f, 0.0f}, dx[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      block_products<T>(cr[k], cr8[k], xw, dc, dx);
      const uint32_t sr = k < 2 ? s_r.x : s_r.y, sr8 = k < 2 ? s_r8.x : s_r8.y;
      const uint32_t mr = k < 2 ? m_r.x : m_r.y, mr8 = k < 2 ? m_r8.x : m_r8.y;
      const int h = 16 * (k % 2);  // the block's half within the 32-bit word
      const float s0 = __half2float(__ushort_as_half(uint16_t(sr >> h)));
      const float s8 = __half2float(__ushort_as_half(uint16_t(sr8 >> h)));
      // The minimum less M s: takes the codes' offset back out with the block's sum of x.
      const float n0 = __half2float(__ushort_as_half(uint16_t(mr >> h))) - Bits<T>::kMagicValue * s0;
      const float n8 = __half2float(__ushort_as_half(uint16_t(mr8 >> h))) - Bits<T>::kMagicValue * s8;
      acc[0] += dc[0] * s0 + dx[0] * n0;
      acc[1] += dc[1] * s0 + dx[1] * n0;
      acc[2] += dc[2] * s8 + dx[2] * n8;
      acc[3] += dc[3] * s8 + dx[3] * n8;
    }
#pragma unroll
    for (int k = 0; k < kRoundBlocks; ++k) cr[k] = nr[k], cr8[k] = nr8[k];
  }
  if constexpr (SPLIT > 1) {  // the parts of a tile, in order: the same sum whatever the timing
#pragma unroll
    for (int i = 0; i < 4; ++i) partial[warp][lane][i] = acc[i];
    __syncthreads();
    if (part != 0) return;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float sum = 0.0f;
#pragma unroll
      for (int s = 0; s < SPLIT; ++s) sum += partial[warp + s][lane][i];
      acc[i] = sum;
    }
  }
  if (!live) return;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int n = 2 * g + (i % 2);
    if (n < m) y[int64_t(n) * w.rows + row + 8 * (i / 2)] = from_float<T>(acc[i]);
  }
}

// The fewest warps a tile's rounds are split between that still give two blocks an
// SM (132 on an H200), each warp keeping a round at least.
int mma_split(int64_t rows, int64_t rounds) {
  int split = 1;
  while (split < kWarps && blocks_for(rows / 16, kWarps / split) < 264 && rounds >= 2 * split) split *= 2;
  return split;
}

template <typename T>
void launch(const QuantizedView& w, const T* x, T* y, int m, cudaStream_t stream) {
  const int split = mma_split(w.rows, w.cols / 256);
  const unsigned grid = blocks_for(w.rows / 16, kWarps / split);
  switch (split) {
    case 1: launch_dependent(int4_gemv_mma_kernel<T, 1>, grid, kWarps * 32, stream, w, x, y, m); break;
    case 2: launch_dependent(int4_gemv_mma_kernel<T, 2>, grid, kWarps * 32, stream, w, x, y, m); break;
    case 4: launch_dependent(int4_gemv_mma_kernel<T, 4>, grid, kWarps * 32, stream, w, x, y, m); break;
    default: launch_dependent(int4_gemv_mma_kernel<T, 8>, grid, kWarps * 32, stream, w, x, y, m); break;
  }
}

}  // namespace

bool int4_gemv_mma(const QuantizedView& w, const void* x, void* y, int64_t m, DType dtype, cudaStream_t stream) {
  const bool shape_ok = w.format == QFormat::Int4 && w.block == 64 && w.rows % 16 == 0 && w.rows > 0 &&
                        w.cols % 256 == 0 && m >= 1 && m <= 8;
  const bool aligned = aligned16(x) && (reinterpret_cast<uintptr_t>(w.codes) & 7) == 0 &&
                       (reinterpret_cast<uintptr_t>(w.scale) & 7) == 0 &&
                       (reinterpret_cast<uintptr_t>(w.minimum) & 7) == 0;
  if (!shape_ok || !aligned || dtype == DType::F32) return false;
  if (dtype == DType::BF16)
    launch<__nv_bfloat16>(w, static_cast<const __nv_bfloat16*>(x), static_cast<__nv_bfloat16*>(y), int(m), stream);
  else
    launch<__half>(w, static_cast<const __half*>(x), static_cast<__half*>(y), int(m), stream);
  check_launch("int4_gemv_mma");
  return true;
}

}  // namespace hyft::kernels::cuda
