// Attention of a decoding step over the serving engine's slotted cache: one new
// query per row b, at position i = positions[b], over keys j = 0..i of slot b that
// the hybrid rule allows:
//     j <= i  and  (W = 0  or  i - j < W  or  j mod s = 0  or  i mod s = 0)  (s > 0)
// out[b, h] = sum_j softmax_j(scale q[b, h] . k[b, j, h / G]) v[b, j, h / G], G = H / Hkv.
// Reference: SDPA over the slot's first `keys` keys with the dense (B, 1, 1, keys) mask
// (attention/hybrid_attention.h, make_slot_attention_mask), which reads every key up
// to the bucket `keys`; here only the row's own and allowed keys are read.
//
// Split over the keys (flash-decoding): grid (splits, B * Hkv), splits chosen so the
// blocks fill the GPU a few times over; a block takes a chunk of keys of one row's
// kv head for the G query heads that share it. A warp takes every kWarps-th key, U
// of them a round with all their loads in flight, its lanes split between the G
// heads (LaneLayout below), and keeps an online softmax; the warps are merged in
// shared memory and the block's (max, sum, unnormalised output) go to a float32
// workspace, which a second kernel merges over the splits by their maxima.
// Where the keys are split, a block loads its first round before waiting for the
// kernel ahead (dependent launches), all but the row's new key, which that kernel
// writes. Everything in float32, one rounding of the output. Blocks past a row's
// position write an empty partial (max -inf, sum 0), so a step captured in a CUDA
// graph with a fixed `keys` bucket stays exact.
#include "kernels/cuda_common.cuh"

#include <algorithm>
#include <cmath>

namespace hyft::kernels::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kRound = kWarps * 8;  // keys a block takes a round, at most; chunks are whole multiples
constexpr float kLog2e = 1.4426950408889634f;
constexpr int kMergeThreads = 128;
constexpr int kMaxSplits = 1024;

__device__ __forceinline__ bool allowed(int64_t i, int64_t j, int64_t window, int64_t stride) {
  if (j > i) return false;
  if (window == 0 || i - j < window) return true;
  return stride > 0 && (j % stride == 0 || i % stride == 0);
}

// Lane layout: the warp's lanes split into G groups of LPH = 32 / G, group g holding
// query head kvh * G + g, each lane DPL = Dh / LPH consecutive dimensions of it. All
// groups read the same key and value rows (one load serves them), and a dot
// product is reduced over LPH lanes (log2 LPH shuffles) for the G heads at once.
template <typename T, int DH, int G>
struct LaneLayout {
  static constexpr int LPH = 32 / G;                                   // lanes per query head
  static constexpr int DPL = DH / LPH;                                 // dimensions per lane
  static constexpr int V = DPL * int(sizeof(T)) >= 16 ? 16 / int(sizeof(T)) : DPL;  // elements per load
  static constexpr int NV = DPL / V;                                   // loads per row per lane
  static constexpr int U = 32 / DPL < 1 ? 1 : (32 / DPL > 8 ? 8 : 32 / DPL);  // keys per round
};

// Workspace layout per (b, h, split): m, l, then acc[Dh].
template <typename T, int DH, int G>
__global__ void __launch_bounds__(kWarps * 32)
    slot_attention_partial(const T* __restrict__ q, const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                           const int64_t* __restrict__ positions, float* __restrict__ work, int64_t kv_heads,
                           int64_t max_len, int64_t chunk, int64_t window, int64_t stride, float scale, bool early) {
  if (!early) wait_for_prior_grids();
  using L = LaneLayout<T, DH, G>;
  constexpr int LPH = L::LPH, DPL = L::DPL, V = L::V, NV = L::NV, U = L::U;
  const int split = blockIdx.x, splits = gridDim.x;
  const int64_t b = blockIdx.y / kv_heads, kvh = blockIdx.y % kv_heads, H = kv_heads * G;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / LPH, part = lane % LPH;
  // early: the first round's keys are loaded before the wait (cuda_common.cuh: the
  // positions came in before the step's kernels ran, and every key before i was
  // written by an earlier step); key i and q come from the kernel ahead (the q/k/v
  // GEMV or RoPE's cache write), after it.
  const int64_t i = positions[b];
  const int64_t first = int64_t(split) * chunk, last = min(first + chunk, i + 1);  // keys [first, last)
  const int64_t row_stride = kv_heads * DH;  // between consecutive positions of a slot
  const T* kb = k_cache + (b * max_len) * row_stride + kvh * DH + part * DPL;
  const T* vb = v_cache + (b * max_len) * row_stride + kvh * DH + part * DPL;
  // A round: the warp's next U keys (every kWarps-th), their loads all in flight
  // before any arithmetic; one softmax rescale per round.
  Vec<T, V> kr[U][NV], vr[U][NV];
  bool ok[U];
  auto load_key = [&](int u, int64_t j) {
#pragma unroll
    for (int t = 0; t < NV; ++t) {
      kr[u][t] = load<T, V>(kb + j * row_stride + t * V);
      vr[u][t] = load<T, V>(vb + j * row_stride + t * V);
    }
  };
  auto load_round = [&](int64_t j0, bool skip_new) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t j = j0 + int64_t(u) * kWarps;
      ok[u] = j < last && allowed(i, j, window, stride);
      if (ok[u] && !(skip_new && j == i)) load_key(u, j);
    }
  };
  int64_t j0 = first + warp;
  load_round(j0, /*skip_new=*/true);
  wait_for_prior_grids();
  allow_dependents();
#pragma unroll
  for (int u = 0; u < U; ++u)
    if (ok[u] && j0 + int64_t(u) * kWarps == i) load_key(u, i);

  float qv[DPL], acc[DPL], m = -INFINITY, l = 0.0f;
  const T* qp = q + (b * H + kvh * G + g) * DH + part * DPL;
#pragma unroll
  for (int t = 0; t < NV; ++t) {
    const Vec<T, V> qr = load<T, V>(qp + t * V);
#pragma unroll
    for (int e = 0; e < V; ++e) {
      qv[t * V + e] = to_float(qr.v[e]) * scale * kLog2e;  // scores in base 2: exp2f below
      acc[t * V + e] = 0.0f;
    }
  }
  for (bool first_round = true; j0 < last; j0 += kWarps * U, first_round = false) {
    if (!first_round) load_round(j0, /*skip_new=*/false);
    float s[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      s[u] = 0.0f;
      if (ok[u]) {
#pragma unroll
        for (int t = 0; t < NV; ++t)
#pragma unroll
          for (int e = 0; e < V; ++e) s[u] += qv[t * V + e] * to_float(kr[u][t].v[e]);
      }
    }
#pragma unroll
    for (int o = LPH / 2; o > 0; o >>= 1) {
#pragma unroll
      for (int u = 0; u < U; ++u) s[u] += __shfl_xor_sync(0xffffffffu, s[u], o);
    }
    float m_new = m;
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (ok[u]) m_new = fmaxf(m_new, s[u]);
    if (m_new == -INFINITY) continue;  // no key of this round allowed (the same for the whole warp)
    const float correction = exp2f(m - m_new);  // 0 while m is -inf
    l *= correction;
#pragma unroll
    for (int d = 0; d < DPL; ++d) acc[d] *= correction;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (!ok[u]) continue;
      const float p = exp2f(s[u] - m_new);
      l += p;
#pragma unroll
      for (int t = 0; t < NV; ++t)
#pragma unroll
        for (int e = 0; e < V; ++e) acc[t * V + e] += p * to_float(vr[u][t].v[e]);
    }
    m = m_new;
  }
  // Merge the warps: each writes its partial to shared memory, then the block combines.
  constexpr int Dh = DH;
  __shared__ float sm[kWarps][G], sl[kWarps][G], sacc[kWarps][G][Dh];
  if (part == 0) {
    sm[warp][g] = m;
    sl[warp][g] = l;
  }
#pragma unroll
  for (int d = 0; d < DPL; ++d) sacc[warp][g][part * DPL + d] = acc[d];
  __syncthreads();
  for (int e = threadIdx.x; e < G * Dh; e += kWarps * 32) {
    const int gi = e / Dh, d = e % Dh;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm[w][gi]);
    float L = 0.0f, A = 0.0f;
    if (M != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float f = exp2f(sm[w][gi] - M);  // 0 for an empty warp (m = -inf)
        L += sl[w][gi] * f;
        A += sacc[w][gi][d] * f;
      }
    }
    float* out = work + ((b * H + kvh * G + gi) * splits + split) * (Dh + 2);
    if (d == 0) {
      out[0] = M;
      out[1] = L;
    }
    out[2 + d] = A;
  }
}

// One block a (b, h): the splits' maxima reduced, their weights 2^(m - M) in shared
// memory, then one thread a dimension sums the weighted partial outputs.
template <typename T>
__global__ void __launch_bounds__(kMergeThreads)
    slot_attention_merge(const float* __restrict__ work, T* __restrict__ out, int splits, int head_dim) {
  __shared__ float weight[kMaxSplits], reduce[kMergeThreads];
  wait_for_prior_grids();
  allow_dependents();
  const int64_t bh = blockIdx.x;
  const int t = threadIdx.x;
  const float* part = work + bh * splits * (head_dim + 2);
  float M = -INFINITY;
  for (int s = t; s < splits; s += kMergeThreads) M = fmaxf(M, part[s * (head_dim + 2)]);
  reduce[t] = M;
  __syncthreads();
  for (int w = kMergeThreads / 2; w > 0; w >>= 1) {
    if (t < w) reduce[t] = fmaxf(reduce[t], reduce[t + w]);
    __syncthreads();
  }
  M = reduce[0];
  __syncthreads();
  float L = 0.0f;
  for (int s = t; s < splits; s += kMergeThreads) {
    const float* p = part + s * (head_dim + 2);
    weight[s] = p[0] == -INFINITY ? 0.0f : exp2f(p[0] - M);  // an empty split weighs nothing
    L += p[1] * weight[s];
  }
  reduce[t] = L;
  __syncthreads();
  for (int w = kMergeThreads / 2; w > 0; w >>= 1) {
    if (t < w) reduce[t] += reduce[t + w];
    __syncthreads();
  }
  L = reduce[0];
  for (int d = t; d < head_dim; d += kMergeThreads) {
    float A = 0.0f;
#pragma unroll 4
    for (int s = 0; s < splits; ++s) A += part[s * (head_dim + 2) + 2 + d] * weight[s];
    out[bh * head_dim + d] = from_float<T>(A / L);
  }
}

template <typename T, int DH>
void launch_partial(int G, dim3 grid, const T* q, const T* k, const T* v, const int64_t* positions, float* work,
                    int64_t kv_heads, int64_t max_len, int64_t chunk, int64_t window, int64_t stride, float scale,
                    cudaStream_t stream) {
  const unsigned threads = kWarps * 32;
  // A block's first round before the wait where the keys are split (one stream, few
  // rows): 3.5% faster a step at 1.3b, one stream; with one split a row (32 streams)
  // it measured slower (BENCHMARKS.md, eighth session).
  const bool early = grid.x > 1;
  switch (G) {
    case 1: launch_dependent(slot_attention_partial<T, DH, 1>, grid, threads, stream, q, k, v, positions, work, kv_heads, max_len, chunk, window, stride, scale, early); break;
    case 4: launch_dependent(slot_attention_partial<T, DH, 4>, grid, threads, stream, q, k, v, positions, work, kv_heads, max_len, chunk, window, stride, scale, early); break;
    default: launch_dependent(slot_attention_partial<T, DH, 8>, grid, threads, stream, q, k, v, positions, work, kv_heads, max_len, chunk, window, stride, scale, early); break;
  }
}

}  // namespace

// Enough blocks to fill the GPU about four times over (132 SMs on an H200), in
// chunks of whole rounds; a split for each kRound keys at most.
int slot_attention_splits(int64_t rows, int64_t kv_heads, int64_t keys) {
  const int64_t most = (keys + kRound - 1) / kRound, wanted = (4 * 132 + rows * kv_heads - 1) / (rows * kv_heads);
  return int(std::max<int64_t>(1, std::min<int64_t>({most, wanted, kMaxSplits})));
}

bool slot_attention(const SlotAttentionArgs& a, cudaStream_t stream) {
  const int64_t G = a.kv_heads > 0 ? a.heads / a.kv_heads : 0;
  const bool shape_ok = (a.head_dim == 64 || a.head_dim == 128) && a.kv_heads > 0 && a.heads % a.kv_heads == 0 &&
                        (G == 1 || G == 4 || G == 8) && a.rows > 0 && a.keys > 0;  // the layouts checked on the GPU
  if (!shape_ok || !aligned16(a.q) || !aligned16(a.k_cache) || !aligned16(a.v_cache)) return false;
  if (a.rows * a.kv_heads > 65535) return false;  // gridDim.y
  const int splits = slot_attention_splits(a.rows, a.kv_heads, a.keys);
  const int64_t chunk = ((a.keys + splits - 1) / splits + kRound - 1) / kRound * kRound;
  const dim3 grid(unsigned(splits), unsigned(a.rows * a.kv_heads));
  dispatch(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto *q = static_cast<const T*>(a.q), *k = static_cast<const T*>(a.k_cache),
               *v = static_cast<const T*>(a.v_cache);
    if (a.head_dim == 128)
      launch_partial<T, 128>(int(G), grid, q, k, v, a.positions, a.workspace, a.kv_heads, a.max_len, chunk, a.window,
                           a.global_stride, a.scale, stream);
    else
      launch_partial<T, 64>(int(G), grid, q, k, v, a.positions, a.workspace, a.kv_heads, a.max_len, chunk, a.window,
                           a.global_stride, a.scale, stream);
    check_launch("slot_attention_partial");
    launch_dependent(slot_attention_merge<T>, unsigned(a.rows * a.heads), kMergeThreads, stream, a.workspace,
                     static_cast<T*>(a.out), splits, int(a.head_dim));
    check_launch("slot_attention_merge");
  });
  return true;
}

}  // namespace hyft::kernels::cuda
