// Launchers of hyft's CUDA kernels (kernels/*.cu), on raw device pointers so
// that nvcc compiles them without ATen's headers. Only kernels/fused_ops.cpp calls
// them for the fused operations and quant/quantized_linear.cpp for the quantized
// weights, after checking shapes, dtypes, contiguity and alignment; each kernel's
// reference is the ATen expression named in fused_ops.h or quant/formats.h.
// Compiled only when hyft is built with CUDA (HYFT_HAVE_CUDA_KERNELS).
#pragma once

#include <cstdint>

typedef struct CUstream_st* cudaStream_t;

namespace hyft::kernels::cuda {

enum class DType { F32, BF16, F16 };

// --- rotary.cu: x (rows, H, Dh), each row's (H, Dh) contiguous, rows x_stride elements
// apart; out (rows, H, Dh) contiguous; cos/sin (rows, Dh); rows = B*T.
// forward:  out = x * cos + rotate_half(x) * sin
// backward: out = dx for x = dout (the transpose of the rotation)
void rotary(const void* x, const void* cos, const void* sin, void* out, int64_t rows, int64_t heads,
            int64_t head_dim, int64_t x_stride, bool backward, DType dtype, cudaStream_t stream);

// rotary_decode: a decoding step, one new token per row b. q (rows, H, Dh), k and v
// (rows, Hkv, Dh), each row's heads contiguous, rows q/k/v_stride elements apart;
// cos/sin (rows, Dh). q_out (rows, H, Dh) = rotary(q); at [b, positions[b]] of the
// caches (slots, max_len, Hkv, Dh): k_cache = rotary(k[b]), v_cache = v[b].
struct RotaryDecodeArgs {
  const void *q = nullptr, *k = nullptr, *v = nullptr, *cos = nullptr, *sin = nullptr;
  const int64_t* positions = nullptr;
  void *q_out = nullptr, *k_cache = nullptr, *v_cache = nullptr;
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;
  int64_t rows = 0, heads = 0, kv_heads = 0, head_dim = 0, max_len = 0;
  DType dtype = DType::BF16;
};
void rotary_decode(const RotaryDecodeArgs& args, cudaStream_t stream);

// --- swiglu.cu: gate and up (rows, cols), row b at b * stride (stride = cols for two
// tensors; 2 cols for the halves of one fused gate/up output); out, dout (rows, cols)
// contiguous.
// forward:  out = silu(gate) * up
void swiglu_forward(const void* gate, const void* up, void* out, int64_t rows, int64_t cols, int64_t stride,
                    DType dtype, cudaStream_t stream);
// backward: d_gate = dout * up * s * (1 + gate * (1 - s)), d_up = dout * silu(gate), s = sigmoid(gate);
// d_gate and d_up laid out as gate and up (and may be them: each element is read, then written, by one thread).
void swiglu_backward(const void* dout, const void* gate, const void* up, void* d_gate, void* d_up, int64_t rows,
                     int64_t cols, int64_t stride, DType dtype, cudaStream_t stream);

// --- cross_entropy.cu: logits (n, V) row-major, labels (n,) int64 in [0, V).
// loss[i] = logsumexp(logits[i]) - logits[i, labels[i]] (float32); each row of
// logits is overwritten with softmax(row) - onehot(label), the loss's gradient.
void cross_entropy_rows_inplace(void* logits, const int64_t* labels, float* loss, int64_t n, int64_t vocab,
                                DType dtype, cudaStream_t stream);

// --- rms_norm.cu: inference only (no backward). x, y (rows, dim), w (dim,); d and h
// null, or (rows, dim): h = x + d first, and the norm is of h.
// y = x * rsqrt(mean(x^2) + eps) * w in float32, one rounding (at::rms_norm's).
void rms_norm(const void* x, const void* d, const void* w, void* h, void* y, int64_t rows, int64_t dim, float eps,
              DType dtype, cudaStream_t stream);

// --- argmax_rows.cu: out[r] = at::argmax(x, 1)[r] for x (rows, cols) contiguous
// (NaN beats every number; the first of equals wins). False (nothing launched) when
// rows or cols is 0.
bool argmax_rows(const void* x, int64_t rows, int64_t cols, int64_t* out, DType dtype, cudaStream_t stream);

// --- slot_cache.cu: k, v (rows, width), rows k_stride / v_stride elements apart, into
// row b's slot at positions[b] of the caches (slots, max_len, width); positions on the device.
void slot_cache_write(const void* k, const void* v, const int64_t* positions, void* k_cache, void* v_cache,
                      int64_t rows, int64_t max_len, int64_t width, int64_t k_stride, int64_t v_stride, DType dtype,
                      cudaStream_t stream);

// --- slot_attention.cu: a decoding step's attention over the slotted cache. Row b's
// query (at position positions[b] < keys) attends the keys of slot b that the hybrid
// rule (window, global_stride; 0 = off) allows. q, out (rows, heads, head_dim);
// caches (slots, max_len, kv_heads, head_dim); all contiguous; workspace float32
// (rows, heads, slot_attention_splits(rows, kv_heads, keys), head_dim + 2). False (nothing
// launched) unless head_dim is 64 or 128, heads / kv_heads is 1, 4 or 8 and the
// pointers are 16-byte aligned.
struct SlotAttentionArgs {
  const void* q = nullptr;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  const int64_t* positions = nullptr;
  void* out = nullptr;
  float* workspace = nullptr;
  int64_t rows = 0, heads = 0, kv_heads = 0, head_dim = 0, max_len = 0, keys = 0;
  int64_t window = 0, global_stride = 0;
  float scale = 1.0f;
  DType dtype = DType::BF16;
};
int slot_attention_splits(int64_t rows, int64_t kv_heads, int64_t keys);
bool slot_attention(const SlotAttentionArgs& args, cudaStream_t stream);

// --- dequantize.cu and quantized_gemv.cu: a frozen weight W (rows, cols) kept in
// one of quant/formats.h's layouts. Scales per block of the row-major flattened
// weight (NF4, INT4; `block` elements) or per row (INT8).
enum class QFormat { Nf4, Int8, Int4 };
struct QuantizedView {
  QFormat format = QFormat::Nf4;
  const void* codes = nullptr;    // NF4/INT4: (rows*cols/2,) uint8, the first code high; INT8: (rows, cols) int8
  const void* scale = nullptr;    // NF4: absmax float32 (blocks,), or its 8-bit codes (blocks,) uint8 when
                                  // double-quantized; INT8: absmax float32 (rows,); INT4: float16 (blocks,)
  const void* minimum = nullptr;  // INT4: float16 (blocks,)
  // NF4 double-quantized: absmax[b] = code8[scale[b]] * scale2[b / 256] + offset.
  const float* scale2 = nullptr;  // (ceil(blocks / 256),) float32; null when not double-quantized
  const float* code8 = nullptr;   // (256,) float32
  float offset = 0.0f;
  int64_t rows = 0, cols = 0, block = 0;  // block: NF4/INT4 only
};

// out (rows, cols) = W dequantized to dtype, exactly as the ATen reference rounds.
void dequantize(const QuantizedView& w, void* out, DType dtype, cudaStream_t stream);

// y (m, rows) = x (m, cols) W^T for a few rows of x (m <= kGemvMaxRows, decoding),
// W's codes times their scales, accumulated in float32. False (nothing launched)
// when the layout does not suit the kernel (cols % 32 != 0; a 4-bit block other
// than 64 or not whole within a row; misaligned pointers); the caller then
// dequantizes and multiplies.
constexpr int kGemvMaxRows = 8;
bool quantized_gemv(const QuantizedView& w, const void* x, void* y, int64_t m, DType dtype, cudaStream_t stream);

// y (1, rows) = x (1, cols) W^T for one row of x (a decoding stream), W (rows, cols)
// dense in dtype, contiguous: the single-row kernel of quantized_gemv reading W
// itself, with float32 sums. Reference: at::linear. False (nothing launched) when a
// row is not whole 16-byte words or a pointer is misaligned.
bool dense_gemv(const void* w, int64_t rows, int64_t cols, const void* x, void* y, DType dtype, cudaStream_t stream);

// The layer's RMSNorm that the two GEMVs below may apply to x first (x then the
// residual stream h): x read as rms_norm(h) * weight, computed as rms_norm computes it
// (bit for bit). weight (cols,) in dtype, 16-byte aligned, cols <= 16384, W dense
// or INT8 (the GEMVs decline INT4 with a norm; NF4 has neither GEMV); null: x as it is.
struct RowNorm {
  const void* weight = nullptr;
  float eps = 0.0f;
};

// y (1, rows / 2) = silu(x W_g^T) * (x W_u^T) for one row of x and W = [W_g; W_u]
// (rows, cols), a gate and an up projection stacked (rows even): the single-row GEMV
// with SwiGLU as its last step, each sum rounded to dtype first as swiglu_forward
// reads them. dense: w.codes points at W in dtype (only rows and cols read); else
// W is quantized as for quantized_gemv. Reference: the GEMV, then swiglu_forward.
// False (nothing launched) for float32, NF4 and the layouts the GEMVs above refuse.
bool gemv_swiglu(const QuantizedView& w, bool dense, const void* x, const RowNorm& norm, void* y, DType dtype,
                 cudaStream_t stream);

// A decoding stream's q/k/v as one single-row GEMV over W = [W_q; W_k; W_v]
// ((heads + 2 kv_heads) head_dim rows), ending in rotary_decode's work for its one
// row: the sums rounded to a.dtype, q rotated into a.q_out, k rotated and v written
// into slot 0 of the caches at a.positions[0] (a.q, a.k, a.v and their strides
// unused; a.rows 1). dense as for gemv_swiglu. Reference: the GEMV, then
// rotary_decode. False (nothing launched) for float32, NF4, head_dim % 4 != 0, and
// the layouts the GEMVs refuse.
bool gemv_rotary_slot_write(const QuantizedView& w, bool dense, const void* x, const RowNorm& norm,
                            const RotaryDecodeArgs& a, cudaStream_t stream);

// A decoder layer's o or down projection onto the residual stream: y (1, rows) =
// residual + x W^T for one row, the GEMV's sums rounded to dtype before the add (as
// the add after the projection reads them). dense as for gemv_swiglu; all formats.
// Reference: the GEMV, then the add in dtype. False (nothing launched) for float32
// and the layouts the GEMVs refuse.
bool gemv_add_residual(const QuantizedView& w, bool dense, const void* x, const void* residual, void* y, DType dtype,
                       cudaStream_t stream);

}  // namespace hyft::kernels::cuda
