// y (m, rows) = x (m, cols) W^T with W kept quantized (quant/formats.h), for the few
// rows of a decoding step (m <= kGemvMaxRows): the weight's codes are read once,
// straight from memory, which is what bounds decoding. Reference: dequantize W to
// T, then at::linear (kernels_check compares them). Two kernels: one for 2..8 rows
// of x (below) and one for a single row (further down, gemv_one_kernel), which also
// serves dense weights (dense_gemv: a decoding stream's bf16 projections). INT4 with
// bf16/fp16 x goes to the tensor cores first (int4_gemv_mma.cu) where its shape suits.
//
// 2..8 rows of x: one warp per output row. A lane takes 16 bytes of codes at a time
// (32 weights of a 4-bit format, 16 of INT8) and multiplies their values with the
// same columns of every x row, UNROLL such loads in flight per lane. The scales are applied per
// word, not per weight (the 32 weights of a word share their block's scale; INT8's
// is the row's, applied once at the end):
//   NF4   sum_j levels[c_j] x_j * absmax   (absmax decoded first when double-quantized)
//   INT4  (sum_j c_j x_j) * s + (sum_j x_j) * m
//   INT8  (sum_j q_j x_j) * absmax / 127
// so W is never rounded to T (the reference rounds it; the check's bounds allow it).
// Codes become floats through a 16-entry shared table (NF4's levels, or 0..15; a
// lane per bank, no conflicts) or, for INT8, by the exponent trick. Sums in float32,
// then a butterfly reduction over the warp; lane 0 writes the m outputs.
#include "kernels/cuda_common.cuh"
#include "kernels/quantized_common.cuh"
#include "kernels/rms_norm_row.cuh"

#include <type_traits>

namespace hyft::kernels::cuda {

namespace {

constexpr int kWarps = 8;  // rows per thread block
constexpr int kUnroll = 4;
constexpr int kBlockShift = 6;  // the 4-bit formats' scale blocks: 64 weights, whole within a row

template <QFormat F> constexpr int weights_per_load() { return F == QFormat::Int8 ? 16 : 32; }

// The signed byte k of `word` (already XORed with 0x80808080) as a float: the byte
// becomes the low mantissa bits of 2^23, then 2^23 + 128 is subtracted.
__device__ __forceinline__ float int8_byte(uint32_t biased, int k) {
  return __int_as_float(int(__byte_perm(biased, 0x4B000000u, 0x7440u | unsigned(k)))) - 8388736.0f;
}

// The word's weights as floats, before their scale.
template <QFormat F>
__device__ __forceinline__ void decode_word(const uint4& word, const float* table, float* out) {
  const uint32_t parts[4] = {word.x, word.y, word.z, word.w};
#pragma unroll
  for (int p = 0; p < 4; ++p) {
    if constexpr (F == QFormat::Int8) {
      const uint32_t biased = parts[p] ^ 0x80808080u;
#pragma unroll
      for (int k = 0; k < 4; ++k) out[4 * p + k] = int8_byte(biased, k);
    } else {
#pragma unroll
      for (int k = 0; k < 4; ++k) {  // byte k of the part: first code in its high nibble
        const uint32_t byte = (parts[p] >> (8 * k)) & 0xFFu;
        out[8 * p + 2 * k] = table[byte >> 4];
        out[8 * p + 2 * k + 1] = table[byte & 15u];
      }
    }
  }
}

template <typename T, QFormat F, int M>
__global__ void __launch_bounds__(kWarps * 32)
    quantized_gemv_kernel(QuantizedView w, const T* __restrict__ x, T* __restrict__ y, int m) {
  constexpr int K = weights_per_load<F>();
  constexpr int BYTES_PER_WEIGHT_X2 = (F == QFormat::Int8) ? 2 : 1;  // bytes of codes per 2 weights
  __shared__ float table[16];
  if (threadIdx.x < 16) table[threadIdx.x] = F == QFormat::Nf4 ? kNf4Levels[threadIdx.x] : float(threadIdx.x);
  __syncthreads();
  wait_for_prior_grids();
  allow_dependents();
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= w.rows) return;
  const int64_t cols = w.cols;
  const uint8_t* codes = static_cast<const uint8_t*>(w.codes) + row * cols * BYTES_PER_WEIGHT_X2 / 2;
  const int64_t row_block = row * (cols >> kBlockShift);  // the row's first scale block (4-bit formats)
  float acc[M];
#pragma unroll
  for (int r = 0; r < M; ++r) acc[r] = 0.0f;
  for (int64_t k0 = int64_t(lane) * K; k0 < cols; k0 += int64_t(kUnroll) * 32 * K) {
    uint4 words[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {  // every load first, then the arithmetic
      const int64_t k = k0 + int64_t(u) * 32 * K;
      if (k < cols) words[u] = __ldg(reinterpret_cast<const uint4*>(codes + k * BYTES_PER_WEIGHT_X2 / 2));
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t k = k0 + int64_t(u) * 32 * K;
      if (k >= cols) break;
      float wv[K];
      decode_word<F>(words[u], table, wv);
      float s = 1.0f, mn = 0.0f;  // the word's block scale (and INT4's minimum)
      if constexpr (F == QFormat::Nf4) {
        s = nf4_absmax(w, row_block + (k >> kBlockShift));
      } else if constexpr (F == QFormat::Int4) {
        const int64_t b = row_block + (k >> kBlockShift);
        s = __half2float(static_cast<const __half*>(w.scale)[b]);
        mn = __half2float(static_cast<const __half*>(w.minimum)[b]);
      }
#pragma unroll
      for (int r = 0; r < M; ++r) {
        if (r >= m) break;
        const T* xr = x + int64_t(r) * cols + k;
        float dot = 0.0f, xsum = 0.0f;
#pragma unroll
        for (int j = 0; j < K; j += vec16<T>()) {
          const Vec<T, vec16<T>()> xv = load<T, vec16<T>()>(xr + j);
#pragma unroll
          for (int e = 0; e < vec16<T>(); ++e) {
            const float xf = to_float(xv.v[e]);
            dot = fmaf(wv[j + e], xf, dot);
            if constexpr (F == QFormat::Int4) xsum += xf;
          }
        }
        if constexpr (F == QFormat::Int8) acc[r] += dot;
        else if constexpr (F == QFormat::Nf4) acc[r] = fmaf(dot, s, acc[r]);
        else acc[r] += dot * s + xsum * mn;
      }
    }
  }
  float row_scale = 1.0f;
  if constexpr (F == QFormat::Int8) row_scale = static_cast<const float*>(w.scale)[row] * 7.874015718698502e-3f;
#pragma unroll
  for (int r = 0; r < M; ++r) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], off);
  }
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < M; ++r)
      if (r < m) y[int64_t(r) * w.rows + row] = from_float<T>(acc[r] * row_scale);
  }
}

// --- One x row (a single decoding stream): the rows of W read R at a time -------------
//
// The kernel above converts every x value again for every row of W, and its 4-bit
// codes go through the shared table one weight at a time: bound by instructions at
// about a quarter of the memory bound. Here a warp takes kOneRows rows of W and a lane
// reads their codes at the same columns, so x is loaded and converted once for R rows;
// 4-bit codes become floats by bit operations where the format allows:
//   INT4  a code c moved to float bits 16..19 under the exponent of 128 is float(128 +
//         c); the offset comes back out per word through the sum X of x over its
//         columns: sum_j c_j x_j = sum_j (128 + c_j) x_j - 128 X
//   NF4   the shared 16-entry table, indexed by byte offsets taken from the code word
//   INT8  the exponent trick of int8_byte
//   dense W itself in T (dense_gemv)
// A warp's lanes take consecutive 16-byte words of each of its R rows; SPLIT warps of
// a block split a row's words between them when the rows alone give too few blocks to
// fill the GPU, their sums added in shared memory. The first round of W is loaded
// before waiting for the kernel ahead (a dependent launch; W is frozen), x after.

// float(128 + c) for the code c in bits 8k..8k+3 of `part`: the code moved to bits
// 16..19, under the exponent of 128 (bits 16..22 are the mantissa's top for 128..256).
__device__ __forceinline__ float code_at_16(uint32_t part, int k) {
  const uint32_t v = k == 2 ? part : k == 3 ? part >> 8 : part << (8 * (2 - k));
  return __uint_as_float((v & 0x000F0000u) | 0x43000000u);
}

// One 16-byte word of a row times x at its columns, before the word's scale:
//   dense  sum_j w_j x_j          INT8  sum_j q_j x_j
//   NF4    sum_j levels[c_j] x_j  INT4  sum_j (128 + c_j) x_j
// (a 4-bit byte holds its first column's code in the high nibble).
template <typename T, QFormat F, bool DENSE>
__device__ __forceinline__ float word_dot(const uint4& word, const float* xf, const float* table) {
  const uint32_t parts[4] = {word.x, word.y, word.z, word.w};
  float dot = 0.0f;
  if constexpr (DENSE) {
    const Vec<T, vec16<T>()> wv = *reinterpret_cast<const Vec<T, vec16<T>()>*>(&word);
#pragma unroll
    for (int e = 0; e < vec16<T>(); ++e) dot = fmaf(to_float(wv.v[e]), xf[e], dot);
  } else if constexpr (F == QFormat::Int8) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const uint32_t biased = parts[q] ^ 0x80808080u;
#pragma unroll
      for (int k = 0; k < 4; ++k) dot = fmaf(int8_byte(biased, k), xf[4 * q + k], dot);
    }
  } else {
    const char* levels = reinterpret_cast<const char*>(table);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
#pragma unroll
      for (int k = 0; k < 4; ++k) {  // byte k of the part: its high code, then its low one
        const int j = 8 * q + 2 * k;   // the byte's first column in the word
        if constexpr (F == QFormat::Int4) {
          dot = fmaf(code_at_16(parts[q] >> 4, k), xf[j], dot);
          dot = fmaf(code_at_16(parts[q], k), xf[j + 1], dot);
        } else {  // NF4: byte offsets into the table (the code times 4)
          const uint32_t hi = (parts[q] >> (8 * k + 2)) & 0x3Cu;
          const uint32_t lo = (k == 0 ? parts[q] << 2 : parts[q] >> (8 * k - 2)) & 0x3Cu;
          dot = fmaf(*reinterpret_cast<const float*>(levels + hi), xf[j], dot);
          dot = fmaf(*reinterpret_cast<const float*>(levels + lo), xf[j + 1], dot);
        }
      }
    }
  }
  return dot;
}

constexpr int kOneRows = 4;    // rows of W a warp
constexpr int kStageBytes = 32 * 1024;  // x in shared memory: rows of up to 16384 bf16 values
constexpr int kOneUnroll = 2;  // word positions a lane loads before using the first

// What a warp does with its R sums at the end (its rows of W are chosen to suit):
//   Store    y[i] = sum of row i (R consecutive rows)
//   Swiglu   W = [W_g; W_u], a gate and an up projection stacked (2 F rows); y (F,) =
//            silu(x W_g^T) * (x W_u^T): the warp takes gate rows i, i + 1 and up rows
//            F + i, F + i + 1 and writes outputs i, i + 1 (gemv_swiglu)
//   Rotary   W = [W_q; W_k; W_v] (a decoding stream's q/k/v): the warp takes two RoPE
//            pairs of a q or k head, rows j, j + 1, j + Dh/2, j + 1 + Dh/2, rotates them
//            (rotary_decode's arithmetic) and writes q to rot.q_out, k into the cache;
//            or 4 rows of v, written into the cache (gemv_rotary_slot_write)
//   AddResidual  as Store, onto the residual stream: y[i] = residual[i] + T(sum of row i),
//            in T as the add after the projection rounds (gemv_add_residual)
enum class Epilogue { Store, Swiglu, Rotary, AddResidual };

// What the kernel reads besides W and x (each epilogue its own; the rest unused).
struct EpilogueArgs {
  RotaryDecodeArgs rot;
  const void* residual = nullptr;  // AddResidual
  RowNorm norm;                    // NORM: x read as RMSNorm(x) * norm.weight
};

// W's row behind sum r of a warp's unit (its 4 rows; see Epilogue above). outputs:
// Swiglu's F; rot_units, head_dim: Rotary's units of q and k pairs and its head size.
template <Epilogue EPI>
__device__ __forceinline__ int64_t row_of(int64_t unit, int r, int64_t outputs, int64_t rot_units, int64_t head_dim) {
  if constexpr (EPI == Epilogue::Swiglu) return r >= 2 ? outputs + 2 * unit + (r - 2) : 2 * unit + r;
  if constexpr (EPI == Epilogue::Rotary) {
    if (unit < rot_units) {
      const int64_t half = head_dim / 2, head = 2 * unit / half, j = 2 * unit - head * half;
      return head * head_dim + j + (r & 1) + (r >= 2 ? half : 0);
    }
  }
  return 4 * unit + r;
}

// acc[r] for an r known only at run time (a lane's own output), without local memory.
template <int R>
__device__ __forceinline__ float pick(const float (&acc)[R], int r) {
  float v = acc[0];
#pragma unroll
  for (int k = 1; k < R; ++k)
    if (r == k) v = acc[k];
  return v;
}

// DENSE: W is not quantized but kept in T (w.codes points at it; F is unused): the
// same kernel serves the dense projections of a decoding step (dense_gemv).
// x is staged in shared memory first (rows of up to kStageBytes; not for NF4): the
// loop then reads it from there and not through L1, where the stream of W's codes
// evicts it; each block's one trip from L2 for the row replaces those of its loop.
// NORM: x is the residual stream h before the layer's RMSNorm, which the kernel
// applies while staging it: every block normalises the row with rms_norm's
// arithmetic in its order (256 threads, the same sums and the one rounding), so the
// GEMV reads exactly what the norm's kernel would have written, and the norm's
// kernel leaves the step.
template <typename T, QFormat F, int SPLIT, bool DENSE, Epilogue EPI, bool NORM>
__global__ void __launch_bounds__(kWarps * 32, 2)  // two blocks an SM: at most 128 registers
    gemv_one_kernel(QuantizedView w, const T* x, T* __restrict__ y, EpilogueArgs ep) {
  constexpr bool SWIGLU = EPI == Epilogue::Swiglu, ROTARY = EPI == Epilogue::Rotary;
  const RotaryDecodeArgs& rot = ep.rot;
  constexpr int K = DENSE ? vec16<T>() : weights_per_load<F>();  // weights a 16-byte word
  constexpr int R = kOneRows;
  static_assert(R == 4, "row_of and the epilogues take 4 rows a warp");
  constexpr int OUTS = SWIGLU ? R / 2 : R;  // outputs a warp writes
  constexpr int GROUPS = kWarps / SPLIT;    // row groups a block
  __shared__ float table[16];
  __shared__ float partial[kWarps][R];
  if constexpr (!DENSE && F == QFormat::Nf4) {
    if (threadIdx.x < 16) table[threadIdx.x] = kNf4Levels[threadIdx.x];
    __syncthreads();
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int group = warp / SPLIT, part = warp % SPLIT;
  const int64_t outputs = SWIGLU ? w.rows / 2 : w.rows;
  const int64_t unit = int64_t(blockIdx.x) * GROUPS + group;
  const int64_t out0 = unit * OUTS;  // the warp's first output
  const int64_t cols = w.cols, words = cols / K, blocks_per_row = cols >> kBlockShift;
  const int64_t head_dim = ROTARY ? rot.head_dim : 0;
  const int64_t rot_units = ROTARY ? (rot.heads + rot.kv_heads) * rot.head_dim / 4 : 0;
  const uint8_t* codes[R];  // rows past the end read the last row and are not written
  int64_t first_block[R];   // the row's first scale block (4-bit formats)
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t row = out0 + r % OUTS < outputs ? row_of<EPI>(unit, r, outputs, rot_units, head_dim) : w.rows - 1;
    codes[r] = static_cast<const uint8_t*>(w.codes) + row * (words * 16);
    first_block[r] = row * blocks_per_row;
  }
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;

  constexpr int64_t kStride = 32 * SPLIT;  // between a lane's word positions
  // A round: kOneUnroll word positions of the R rows. The next round's codes are
  // loaded before this round's arithmetic, so a warp always has loads in flight.
  auto load_round = [&](int64_t p0, uint4 (&c)[kOneUnroll][R]) {
#pragma unroll
    for (int u = 0; u < kOneUnroll; ++u) {
      const int64_t p = p0 + u * kStride;
      if (p < words) {
#pragma unroll
        for (int r = 0; r < R; ++r) c[u][r] = __ldg(reinterpret_cast<const uint4*>(codes[r] + p * 16));
      }
    }
  };
  uint4 c[kOneUnroll][R];
  load_round(lane + 32 * part, c);  // frozen weights: before the kernel ahead has finished
  constexpr int V = vec16<T>();
  Vec<T, V> norm_w0;  // NORM: the thread's first values of the norm's weight (frozen too: before the wait)
  if constexpr (NORM) {
    if (int64_t(threadIdx.x) * V < cols) norm_w0 = load<T, V>(static_cast<const T*>(ep.norm.weight) + threadIdx.x * V);
  }
  wait_for_prior_grids();           // x comes from the kernel ahead
  allow_dependents();
  // NF4 reads its table from shared memory too: x staged there measured 6% slower (8b).
  constexpr bool kStageX = DENSE || F != QFormat::Nf4;
  __shared__ uint4 staged_words[kStageBytes / 16];
  T* staged = reinterpret_cast<T*>(staged_words);
  if constexpr (NORM) {  // x = RMSNorm(h) * weight into shared memory, as rms_norm writes it (rms_norm_row.cuh)
    static_assert(kWarps * 32 == kNormThreads, "rms_norm's order of sums takes its block of threads");
    __shared__ float warp_sums[kWarps];
    const T* norm_w = static_cast<const T*>(ep.norm.weight);
    float sumsq = 0.0f;
    for (int64_t i = int64_t(threadIdx.x) * V; i < cols; i += int64_t(kNormThreads) * V)
      sumsq = add_squares(sumsq, load<T, V>(x + i));
    const float r = rms_scale(sumsq, warp_sums, cols, ep.norm.eps);
    for (int64_t i = int64_t(threadIdx.x) * V; i < cols; i += int64_t(kNormThreads) * V)
      store<T, V>(staged + i,
                  rms_scaled(load<T, V>(x + i), i < kNormThreads * V ? norm_w0 : load<T, V>(norm_w + i), r));
    __syncthreads();
    x = staged;
  } else if (kStageX && cols * int64_t(sizeof(T)) <= kStageBytes) {
    for (int64_t i = int64_t(threadIdx.x) * V; i < cols; i += int64_t(kWarps * 32) * V)
      store<T, V>(staged + i, load<T, V>(x + i));
    __syncthreads();
    x = staged;
  }
  for (int64_t p0 = lane + 32 * part; p0 < words; p0 += kOneUnroll * kStride) {
    uint4 next[kOneUnroll][R];
    load_round(p0 + kOneUnroll * kStride, next);
#pragma unroll
    for (int u = 0; u < kOneUnroll; ++u) {
      const int64_t p = p0 + u * kStride;
      if (p >= words) break;
      float xf[K];  // x at the word's K columns
#pragma unroll
      for (int j = 0; j < K; j += vec16<T>()) {
        const Vec<T, vec16<T>()> xv = load<T, vec16<T>()>(x + p * K + j);
#pragma unroll
        for (int e = 0; e < vec16<T>(); ++e) xf[j + e] = to_float(xv.v[e]);
      }
      float xsum = 0.0f;  // INT4: takes the codes' offset of 128 back out
      if constexpr (!DENSE && F == QFormat::Int4) {
#pragma unroll
        for (int j = 0; j < K; ++j) xsum += xf[j];
      }
      const int64_t b = p >> 1;  // 4-bit formats: 32 weights a word, 64 a block
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float dot = word_dot<T, F, DENSE>(c[u][r], xf, table);
        if constexpr (DENSE || F == QFormat::Int8) {  // INT8: the row's scale at the end
          acc[r] += dot;
        } else if constexpr (F == QFormat::Nf4) {
          acc[r] = fmaf(dot, nf4_absmax(w, first_block[r] + b), acc[r]);
        } else {
          const float s = __half2float(static_cast<const __half*>(w.scale)[first_block[r] + b]);
          const float mn = __half2float(static_cast<const __half*>(w.minimum)[first_block[r] + b]);
          acc[r] += (dot - 128.0f * xsum) * s + xsum * mn;
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kOneUnroll; ++u) {
#pragma unroll
      for (int r = 0; r < R; ++r) c[u][r] = next[u][r];
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], off);
  }
  if constexpr (SPLIT > 1) {
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < R; ++r) partial[warp][r] = acc[r];
    }
    __syncthreads();
    if (part != 0) return;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float sum = 0.0f;  // the parts in order: the same sum whatever the timing
#pragma unroll
      for (int s = 0; s < SPLIT; ++s) sum += partial[warp + s][r];
      acc[r] = sum;
    }
  }
  // Every lane now holds the R sums; lane i writes output out0 + i.
  auto sum_of = [&](int r) {  // with INT8's row scale
    float v = pick(acc, r);
    if constexpr (!DENSE && F == QFormat::Int8)
      v *= static_cast<const float*>(w.scale)[row_of<EPI>(unit, r, outputs, rot_units, head_dim)] *
           7.874015718698502e-3f;
    return v;
  };
  if constexpr (ROTARY) {
    if (lane >= R || out0 + lane >= w.rows) return;
    const int64_t pos = rot.positions[0];  // one row: slot 0
    const int64_t at = pos * rot.kv_heads * head_dim;  // the position's (Hkv, Dh) in the caches
    if (unit >= rot_units) {  // v
      const int64_t e =
          row_of<EPI>(unit, lane, outputs, rot_units, head_dim) - (rot.heads + rot.kv_heads) * head_dim;
      static_cast<T*>(rot.v_cache)[at + e] = from_float<T>(sum_of(lane));
      return;
    }
    // lanes 0, 1: o1 = a c - b s at columns j, j + 1; lanes 2, 3: o2 = b c + a s at
    // j + Dh/2, j + 1 + Dh/2; a, b the pair's values rounded to T, as rotary_decode reads them.
    const int64_t half = head_dim / 2, head = 2 * unit / half, j = 2 * unit - head * half;
    const int i = lane & 1;
    const bool second = lane >= 2;
    const float a = to_float(from_float<T>(sum_of(i))), b = to_float(from_float<T>(sum_of(i + 2)));
    const int64_t col = j + i + (second ? half : 0);
    const float c = to_float(static_cast<const T*>(rot.cos)[col]);
    const float s = to_float(static_cast<const T*>(rot.sin)[col]);
    const float o = second ? b * c + a * s : a * c - b * s;
    T* out = head < rot.heads ? static_cast<T*>(rot.q_out) + head * head_dim
                              : static_cast<T*>(rot.k_cache) + at + (head - rot.heads) * head_dim;
    out[col] = from_float<T>(o);
  } else if (lane < OUTS && out0 + lane < outputs) {
    if constexpr (SWIGLU) {  // gate and up rounded to T first, as swiglu_forward reads them
      const float g = to_float(from_float<T>(sum_of(lane))), u = to_float(from_float<T>(sum_of(lane + OUTS)));
      y[out0 + lane] = from_float<T>(swiglu_value(g, u));
    } else if constexpr (EPI == Epilogue::AddResidual) {
      const T* residual = static_cast<const T*>(ep.residual);
      y[out0 + lane] = from_float<T>(to_float(residual[out0 + lane]) + to_float(from_float<T>(sum_of(lane))));
    } else {
      y[out0 + lane] = from_float<T>(sum_of(lane));
    }
  }
}

// The fewest warps a row's words are split between that still give a block to
// every SM, as long as every lane keeps a full round of words. One block an SM, not
// two (a block takes at most half an SM's registers): fewer, longer blocks measured
// 3% faster at 1.3b and 3-7% at 8b (BENCHMARKS.md, eighth session); the q/k/v and
// down GEMVs then run in one wave, and each block normalises or stages x once for
// more rows.
int one_row_split(int64_t rows, int64_t words) {
  const unsigned sms = unsigned(sm_count());
  int split = 1;
  while (split < kWarps && blocks_for(rows, kOneRows * kWarps / split) < sms &&
         words >= int64_t(2 * split) * 32 * kOneUnroll)
    split *= 2;
  return split;
}

template <typename T, QFormat F, bool DENSE, Epilogue EPI, bool NORM>
void launch_one(const QuantizedView& w, const T* x, T* y, cudaStream_t stream, const EpilogueArgs& ep) {
  const int split = one_row_split(w.rows, w.cols / (DENSE ? vec16<T>() : weights_per_load<F>()));
  const int outs = EPI == Epilogue::Swiglu ? kOneRows / 2 : kOneRows;
  const unsigned grid = blocks_for(EPI == Epilogue::Swiglu ? w.rows / 2 : w.rows, outs * kWarps / split);
  auto go = [&](auto kernel) { launch_dependent(kernel, grid, kWarps * 32, stream, w, x, y, ep); };
  switch (split) {
    case 1: go(gemv_one_kernel<T, F, 1, DENSE, EPI, NORM>); break;
    case 2: go(gemv_one_kernel<T, F, 2, DENSE, EPI, NORM>); break;
    case 4: go(gemv_one_kernel<T, F, 4, DENSE, EPI, NORM>); break;
    default: go(gemv_one_kernel<T, F, 8, DENSE, EPI, NORM>); break;
  }
}

// Launches the single-row kernel with epilogue EPI for W dense or in its format, with
// the norm on the way in when ep.norm.weight is set (Swiglu and Rotary only: the
// GEMVs that read a layer's normalised input).
template <Epilogue EPI, typename T>
void launch_one_any(const QuantizedView& w, bool dense, const T* x, T* y, cudaStream_t stream,
                    const EpilogueArgs& ep = {}) {
  constexpr bool kMayNorm = EPI == Epilogue::Swiglu || EPI == Epilogue::Rotary;
  auto with_norm = [&](auto f, auto dense_tag) {
    constexpr bool D = decltype(dense_tag)::value;
    if constexpr (kMayNorm && (D || decltype(f)::value != QFormat::Int4)) {  // norm_fits declines INT4
      if (ep.norm.weight != nullptr) {
        launch_one<T, decltype(f)::value, D, EPI, true>(w, x, y, stream, ep);
        return;
      }
    }
    launch_one<T, decltype(f)::value, D, EPI, false>(w, x, y, stream, ep);
  };
  using Dense = std::true_type;
  using Codes = std::false_type;
  if (dense) {
    with_norm(std::integral_constant<QFormat, QFormat::Int8>{}, Dense{});
    return;
  }
  switch (w.format) {
    case QFormat::Nf4:  // not Swiglu, Rotary: NF4's loop leaves too few registers for their rows (spills)
      if constexpr (!kMayNorm) launch_one<T, QFormat::Nf4, false, EPI, false>(w, x, y, stream, ep);
      break;
    case QFormat::Int8: with_norm(std::integral_constant<QFormat, QFormat::Int8>{}, Codes{}); break;
    case QFormat::Int4: with_norm(std::integral_constant<QFormat, QFormat::Int4>{}, Codes{}); break;
  }
}

// Whether the GEMV kernels take W (dense in a 2-byte dtype: the single-row kernel
// only; or quantized): whole 16-byte words a row, the 4-bit formats' blocks of 64
// whole within a row, aligned pointers.
bool gemv_layout(const QuantizedView& w, bool dense, const void* x) {
  const int64_t k = dense ? 8 : w.format == QFormat::Int8 ? 16 : 32;  // weights a 16-byte word
  if (w.rows == 0 || w.cols % k != 0 || !aligned16(w.codes) || !aligned16(x)) return false;
  return dense || w.format == QFormat::Int8 || (w.block == (1 << kBlockShift) && w.cols % w.block == 0);
}

// Whether the kernel can apply `norm`: none, or a row that fits its shared memory, W
// not INT4 (its loop has no registers left for the norm's: spills).
bool norm_fits(const RowNorm& norm, const QuantizedView& w, bool dense) {
  return norm.weight == nullptr ||
         (w.cols * 2 <= kStageBytes && aligned16(norm.weight) && (dense || w.format != QFormat::Int4));
}

template <typename T, QFormat F>
void launch(const QuantizedView& w, const T* x, T* y, int m, cudaStream_t stream) {
  const unsigned grid = blocks_for(w.rows, kWarps);
  if (m == 1) launch_dependent(quantized_gemv_kernel<T, F, 1>, grid, kWarps * 32, stream, w, x, y, m);
  else if (m == 2) launch_dependent(quantized_gemv_kernel<T, F, 2>, grid, kWarps * 32, stream, w, x, y, m);
  else if (m <= 4) launch_dependent(quantized_gemv_kernel<T, F, 4>, grid, kWarps * 32, stream, w, x, y, m);
  else launch_dependent(quantized_gemv_kernel<T, F, 8>, grid, kWarps * 32, stream, w, x, y, m);
}

}  // namespace

bool quantized_gemv(const QuantizedView& w, const void* x_ptr, void* y_ptr, int64_t m, DType dtype,
                    cudaStream_t stream) {
  if (m < 1 || m > kGemvMaxRows || !gemv_layout(w, /*dense=*/false, x_ptr)) return false;
  if (w.format == QFormat::Int4 && int4_gemv_mma(w, x_ptr, y_ptr, m, dtype, stream)) return true;
  dispatch(dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* x = static_cast<const T*>(x_ptr);
    T* y = static_cast<T*>(y_ptr);
    if (m == 1) {  // one decoding stream
      launch_one_any<Epilogue::Store>(w, /*dense=*/false, x, y, stream);
    } else {
      switch (w.format) {
        case QFormat::Nf4: launch<T, QFormat::Nf4>(w, x, y, int(m), stream); break;
        case QFormat::Int8: launch<T, QFormat::Int8>(w, x, y, int(m), stream); break;
        case QFormat::Int4: launch<T, QFormat::Int4>(w, x, y, int(m), stream); break;
      }
    }
    check_launch("quantized_gemv");
  });
  return true;
}

bool dense_gemv(const void* w, int64_t rows, int64_t cols, const void* x_ptr, void* y_ptr, DType dtype,
                cudaStream_t stream) {
  const int64_t bytes = dtype == DType::F32 ? 4 : 2;
  if (rows == 0 || (cols * bytes) % 16 != 0 || !aligned16(w) || !aligned16(x_ptr)) return false;
  QuantizedView v;  // the dense weight through the same view: codes = W
  v.codes = w;
  v.rows = rows;
  v.cols = cols;
  dispatch(dtype, [&](auto zero) {
    using T = decltype(zero);
    launch_one_any<Epilogue::Store>(v, /*dense=*/true, static_cast<const T*>(x_ptr), static_cast<T*>(y_ptr), stream);
    check_launch("dense_gemv");
  });
  return true;
}

bool gemv_swiglu(const QuantizedView& w, bool dense, const void* x_ptr, const RowNorm& norm, void* y_ptr,
                 DType dtype, cudaStream_t stream) {
  if (dtype == DType::F32 || w.rows % 2 != 0 || (!dense && w.format == QFormat::Nf4) ||
      !gemv_layout(w, dense, x_ptr) || !norm_fits(norm, w, dense))
    return false;
  dispatch(dtype, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (!std::is_same_v<T, float>) {
      EpilogueArgs ep;
      ep.norm = norm;
      launch_one_any<Epilogue::Swiglu>(w, dense, static_cast<const T*>(x_ptr), static_cast<T*>(y_ptr), stream, ep);
      check_launch("gemv_swiglu");
    }
  });
  return true;
}

bool gemv_rotary_slot_write(const QuantizedView& w, bool dense, const void* x_ptr, const RowNorm& norm,
                            const RotaryDecodeArgs& a, cudaStream_t stream) {
  if (a.dtype == DType::F32 || a.rows != 1 || a.head_dim % 4 != 0 || (!dense && w.format == QFormat::Nf4) ||
      w.rows != (a.heads + 2 * a.kv_heads) * a.head_dim || !gemv_layout(w, dense, x_ptr) ||
      !norm_fits(norm, w, dense))
    return false;
  dispatch(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (!std::is_same_v<T, float>) {
      EpilogueArgs ep;
      ep.rot = a;
      ep.norm = norm;
      launch_one_any<Epilogue::Rotary>(w, dense, static_cast<const T*>(x_ptr), static_cast<T*>(nullptr), stream, ep);
      check_launch("gemv_rotary_slot_write");
    }
  });
  return true;
}

bool gemv_add_residual(const QuantizedView& w, bool dense, const void* x_ptr, const void* residual, void* y_ptr,
                       DType dtype, cudaStream_t stream) {
  if (dtype == DType::F32 || !gemv_layout(w, dense, x_ptr)) return false;
  dispatch(dtype, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (!std::is_same_v<T, float>) {
      EpilogueArgs ep;
      ep.residual = residual;
      launch_one_any<Epilogue::AddResidual>(w, dense, static_cast<const T*>(x_ptr), static_cast<T*>(y_ptr), stream,
                                            ep);
      check_launch("gemv_add_residual");
    }
  });
  return true;
}

}  // namespace hyft::kernels::cuda
