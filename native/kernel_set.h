// The per-instruction-set kernel table. Each ISA (portable, AVX2, AVX-512, NEON) is compiled in its own
// translation unit with its own compiler flags and fills one KernelSet; cpu_features.cc picks the best
// one the running CPU supports, so the build machine never decides what the run machine executes.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vserve {

// Activation rows quantized for the int8 matmul paths of the 32-value block types, as llama.cpp's
// Q8_0 / Q8_1 activations: blocks of 32 values, each stored as 32 bytes u = q + 128, q = x * (127 /
// amax) rounded half to even, in [-127, 127], and the scale d = amax / 127 rounded to the nearest
// half (llama.cpp keeps it as an f16, and its dots multiply by that). Storing the unsigned form lets
// u8 x s8 dot instructions (VNNI vpdpbusd) take the weight as the signed operand.
// `s` is Q8_1's second field, which the min of Q4_1 / Q5_1 multiplies: the block's quant sum times the
// unrounded f32 scale amax / 127, itself rounded to the nearest half (ties to even). It is not d * sum(q):
// llama.cpp rounds the product once more, and the min term must round as its does.
struct QuantizedRows {
  const uint8_t* q;  // [rows][cols]
  const float* d;    // [rows][cols / 32]
  const float* s;    // [rows][cols / 32]
  size_t rows;
  size_t cols;
};

// A matmul work item: weight rows [rowBegin, rowEnd) against every activation row.
// out[i * outStride + r] = dot(x_i, w_r).
struct MatmulRange {
  size_t rowBegin;
  size_t rowEnd;
  float* out;
  size_t outStride;
};

// Activation rows for the row-interleaved weight kernels (packed_weights.h): signed quants q, the block
// scales d, and per block `offset * sum(q)` (offset = the bias the packed weights carry: 128 for Q8_0,
// 8 for Q4_0, 16 for Q5_0, 128 for IQ4_NL, 0 for Q4_1 and Q5_1), which the kernels subtract so weights can
// be the unsigned operand of u8 x s8 dots; and QuantizedRows::s, which the mins of Q4_1 and Q5_1 multiply.
struct SignedRows {
  const int8_t* q;      // [rows][cols]
  const float* d;       // [rows][cols / 32]
  const int32_t* bias;  // [rows][cols / 32]
  const float* s;       // [rows][cols / 32]
  size_t rows;
  size_t cols;
  // Which quantization these rows are (unique per op; 0: not known): a kernel that lays the rows out
  // again for itself may keep that layout for the other tasks of the same matmul.
  uint64_t generation = 0;
};

// Activation rows for the 256-value super-block integer matmuls (Q2_K..Q6_K, IQ4_XS), as llama.cpp's
// Q8_K activations: per super-block, m = the value of largest magnitude (the first, on a tie),
// iscale = -127 / m, q = iscale * x rounded half to even, and the f32 scale 1 / iscale (so q and the
// scale have the sign of -m; all zero for an all-zero super-block). The kernels take a scale per 32
// values, so `d` repeats the super-block's scale 8 times. q is stored signed, because K-quant weights
// are unsigned (Q4_K nibbles 0..15, Q6_K 6-bit values 0..63) and so take the u8 side of u8 x s8 dots.
// K-quant weights carry an offset per sub-block (Q4_K: -dmin * min_j; Q6_K: the -32 of q - 32 on
// 16-element sub-blocks), which multiplies the sum of the activations over that sub-block; `s` holds
// that sum for every 16 values, already scaled: s = d(block) * sum(q of the 16 values). A kernel
// then applies the offsets with one float multiply-add per sub-block instead of per element.
struct KQuantRows {
  const int8_t* q;  // [rows][cols], q in [-127, 127]
  const float* d;   // [rows][cols / 32]
  const float* s;   // [rows][cols / 16]
  size_t rows;
  size_t cols;  // a multiple of 256
  uint64_t generation = 0;  // as SignedRows::generation
  // [rows][cols / 32]: sum(q) of each 32 values (at most 32 * 127 in magnitude), for kernels that work
  // the sub-block offsets and mins in integers (two neighbours read as one dword of int16 pairs). The
  // AVX-512 packed IQ4_XS, Q4_K and Q5_K kernels need it; matmul.cc's kquantActivations always makes it,
  // and only hand-built rows for the other kernels (native tests) leave it null.
  const int16_t* blockSums = nullptr;
  // [rows][cols / 16]: the same per 16 values (llama.cpp's Q8_K bsums), for the kernels that sum Q6_K in
  // llama.cpp's order; null where blockSums is.
  const int16_t* halfBlockSums = nullptr;
};

// Float activations for the float-weight paths.
struct FloatRows {
  const float* x;  // [rows][cols]
  size_t rows;
  size_t cols;
};

// One KV head group of one token for KernelSet::attendF32InLlamaCppOrder: `heads` query rows of d values
// over the f32 K and V head slices of the positions first .. first + count - 1 (row i: position first + i).
struct LlamaCppAttention {
  const float* q;  // [heads][d]
  size_t heads;
  size_t d;
  const float* const* keys;
  const float* const* values;
  size_t first;
  size_t count;
  float scale;
  float softcap;  // 0: none
  float* out;     // [heads][d]
  // Non-null: each position's softmax weights, summed over the heads in order, are added into
  // weightSums[i] (position first + i): the scores that KV eviction asks for (attention_scores.h).
  float* weightSums;
};

// The rows of the attention tile after the current one (rows[p], p < count; count 0: none), which tile
// kernels prefetch while they compute: decode attention reads the KV cache from memory, and issuing a
// whole tile's prefetches at once stalls the core until they drain instead of overlapping them.
struct NextRows {
  const float* const* rows;
  size_t count;
};

// The next tile's rows for the KV-format tile kernels (bytes: the head slice's first byte of each row).
struct NextBytes {
  const uint8_t* const* rows;
  size_t count;
};

// A query prepared once per attention unit for integer dots with q8_0/q4_0 keys: every query head's d
// values quantized as q8_0 blocks (q = round(x / s), s = max|x| / 127 per 32 values). `sums` lets
// kernels read key bytes as unsigned (u8 x s8 dot instructions) and take the offset back out once per
// block: sum((k + c) * q) - c * sum(q) = sum(k * q).
struct QueryBlocks {
  const int8_t* q;      // [heads][d]
  const float* s;       // [heads][d / 32]
  const int32_t* sums;  // [heads][d / 32]: sum of each block's q
};

// Attention tile kernels that read one KV format directly (kv_format.h), for head slices that are
// whole blocks; keys[p] / values[p] point at the slice's first byte. The same contracts as scoreTile
// and accumulateTile below; `qb` is the group's prepared query (q8_0 and q4_0 keys; unused otherwise).
struct KVTileKernels {
  void (*score)(const float* q, const QueryBlocks& qb, size_t heads, const uint8_t* const* keys, size_t count, size_t d,
                float scale, float* scores, size_t stride, const NextBytes& next);
  void (*accumulate)(float* out, size_t heads, const uint8_t* const* values, const float* weights, size_t stride,
                     size_t count, size_t d, const NextBytes& next);
};

// ---- Q2_K, Q3_K, Q5_K, IQ4_XS: integer matmuls on KQuantRows activations ----
// Each ISA defines these in its own *_superblock_kernels.cc. `w` is the whole weight matrix, rows of
// cols/256 super-blocks in the GGUF layout; a null entry means matmul.cc dequantizes rows instead.
struct SuperBlockKernels {
  void (*matmulQ2_K)(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
  void (*matmulQ3_K)(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
  void (*matmulQ5_K)(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
  void (*matmulIQ4_XS)(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
  // Optional (nullptr where an ISA has none): IQ4_XS on weights packed 16 rows at a time
  // (packed_weights.h); range rows are multiples of 16 within the packed matrix.
  void (*matmulIQ4_XSPacked)(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
  // Optional, the same for Q5_K, Q3_K and Q2_K.
  void (*matmulQ5_KPacked)(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
  void (*matmulQ3_KPacked)(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
  void (*matmulQ2_KPacked)(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
};

// Integer-dot matmuls for the other 32-element block types (ggml_types.h: Q4_1, Q5_0, Q5_1, IQ4_NL), on
// the same activations as matmulQ4_0; `w` is the whole weight matrix, rows of cols/32 blocks. Each ISA
// has them in a file of their own (*_block32_kernels.cc). As llama.cpp's Q4_1 / Q5_1 dots, each block
// adds (d * d_x) * dot(q, q_x), and Q4_1 / Q5_1 also m * s_x (QuantizedRows::s).
struct Block32Kernels {
  void (*matmulQ4_1)(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range);
  void (*matmulQ5_0)(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range);
  void (*matmulQ5_1)(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range);
  void (*matmulIQ4_NL)(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range);
  // Optional (nullptr where an ISA has none): IQ4_NL on weights packed 16 rows at a time as Q4_0 is
  // (packed_weights.h), with the activations and bias of matmulQ4_0Packed.
  void (*matmulIQ4_NLPacked)(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
  // Optional too: Q5_0 on weights packed 16 rows at a time (packed_weights.h), with the bias 16.
  void (*matmulQ5_0Packed)(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
  // Optional too: Q4_1 and Q5_1 packed likewise, with their mins (bias 0; the min multiplies SignedRows::s).
  void (*matmulQ4_1Packed)(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
  void (*matmulQ5_1Packed)(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
};

// Activation rows rounded to bf16 and laid out as AMX A tiles (amx_bf16_kernels.cc): the tile of row tile
// i (16 rows; rows past `rows` are zeros) and step s (32 values) is 16 rows x 32 values at
// tiles + (i * cols / 32 + s) * 512.
struct BF16Tiles {
  const uint16_t* tiles;
  size_t rows;
  size_t cols;  // a multiple of 32
};

// Prefill matmuls on bf16 tiles (kernel sets with AMX-BF16): weights dequantized to bf16 a 16-row group at
// a time, activations rounded to bf16 once per matmul, f32 sums.
struct BF16Kernels {
  // out = x . W^T for weight rows `range` (multiples of 16 within the packed matrix `w`).
  using Packed = void (*)(const BF16Tiles& x, const uint8_t* w, const MatmulRange& range);
  // matmul.cc takes this path from this many activation rows on.
  size_t from;
  // Lays out row tiles [tileBegin, tileEnd) of x (rows x cols f32) into `tiles` (BF16Tiles).
  void (*layout)(const float* x, size_t rows, size_t cols, size_t tileBegin, size_t tileEnd, uint16_t* tiles);
  // The kernel for packed weights (packed_weights.h) of a GGML type, or nullptr where it has none.
  Packed (*packed)(int type);
};

struct KernelSet {
  const char* isa;
  // Quantizes `rows` rows of `cols` floats (cols % 32 == 0) into q/d/s as QuantizedRows describes.
  void (*quantizeRows)(const float* x, size_t rows, size_t cols, uint8_t* q, float* d, float* s);
  // Quantizes `rows` rows of `cols` floats (cols % 256 == 0) into q/d/s as KQuantRows describes.
  void (*quantizeSuperRows)(const float* x, size_t rows, size_t cols, int8_t* q, float* d, float* s);
  // Integer-dot matmuls; `w` is the whole weight matrix, rows of cols/32 blocks.
  void (*matmulQ8_0)(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range);
  void (*matmulQ4_0)(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range);
  // Optional (nullptr: matmul.cc dequantizes rows and runs matmulF32): K-quant integer matmuls; `w` is
  // the whole weight matrix, rows of cols/256 super-blocks in the GGUF layout.
  void (*matmulQ4_K)(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
  void (*matmulQ6_K)(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
  // Float matmuls; `w` points at row 0 of a matrix of `x.cols`-element rows.
  void (*matmulF32)(const FloatRows& x, const float* w, const MatmulRange& range);
  void (*matmulF16)(const FloatRows& x, const uint16_t* w, const MatmulRange& range);
  void (*matmulBF16)(const FloatRows& x, const uint16_t* w, const MatmulRange& range);
  // Vector helpers for attention and norms.
  float (*dot)(const float* a, const float* b, size_t n);
  void (*axpy)(float* y, const float* x, float a, size_t n);  // y += a * x
  void (*scale)(float* y, float a, size_t n);                 // y *= a
  // Reads `bytes` bytes as fast as possible and returns a value depending on all of them.
  uint64_t (*readAll)(const uint8_t* p, size_t bytes);
  // Optional (nullptr where an ISA has none): matmuls on weights packed 16 rows at a time
  // (packed_weights.h). `w` is the packed matrix; range rows are multiples of 16 within it.
  void (*matmulQ8_0Packed)(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
  void (*matmulQ4_0Packed)(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
  // The same for Q4_K and Q6_K (packed_weights.h), on KQuantRows activations.
  void (*matmulQ4_KPacked)(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
  void (*matmulQ6_KPacked)(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
  // Optional attention tile kernels (attention_core.h falls back to dot / axpy calls, one per position):
  // For the `heads` query rows of one GQA group (rows of d, consecutive), p < count:
  //   scores[h * stride + p] = dot(q + h * d, keys[p]) * scale
  //   out + h * d += sum_p weights[h * stride + p] * values[p]
  // `next` is the following tile's rows, prefetched a slice at a time as this tile's rows are read.
  void (*scoreTile)(const float* q, size_t heads, const float* const* keys, size_t count, size_t d, float scale,
                    float* scores, size_t stride, const NextRows& next);
  void (*accumulateTile)(float* out, size_t heads, const float* const* values, const float* weights, size_t stride,
                         size_t count, size_t d, const NextRows& next);
  // One tile's step of online softmax for `heads` rows of scores (stride apart, count valid): each row's
  // running max[h] and sum[h] take in the tile, its scores become exp(score - new max), and
  // correction[h] is the factor (exp(old max - new max), or 1) the caller applies to that head's output.
  void (*softmaxTile)(float* scores, size_t heads, size_t stride, size_t count, float* max, float* sum,
                      float* correction);
  // The sampler's weights over a stretch of the vocabulary (sampling.cc): out[i] = exp((x[i] - shift) *
  // scale) where x[i] >= floor, and 0 where it is below the floor or -Inf; returns their sum.
  float (*expWeights)(const float* x, size_t count, float shift, float scale, float floor, float* out);
  // out[i] = gelu(gate[i]) * up[i] for i < len, GELU as llama.cpp evaluates it from `table` (gelu.h).
  void (*geglu)(const float* table, float* out, const float* gate, const float* up, size_t len);
  // out[i] = silu(gate[i]) * up[i] for i < len; out may alias gate.
  void (*swiglu)(float* out, const float* gate, const float* up, size_t len);
  // y[i] += sum over r < rows of a[r] * x[r * stride + i], for i < n (several weighted rows into one).
  void (*addRows)(float* y, const float* x, size_t stride, const float* a, size_t rows, size_t n);
  // Optional: tile kernels per KV format id (kv_format.h), kKVFormatCount entries; nullptr, or a null
  // entry's functions, mean attention decodes the tile's rows to floats and uses the f32 kernels above.
  const KVTileKernels* kvTiles;
  // Optional: the Q2_K / Q3_K / Q5_K / IQ4_XS kernels above (nullptr: all dequantize).
  const SuperBlockKernels* superBlocks;
  // Q4_1 / Q5_0 / Q5_1 / IQ4_NL matmuls (Block32Kernels); nullptr: matmul.cc dequantizes rows instead.
  const Block32Kernels* block32;
  // From this many activation rows on, the packed kernels want a few long runs of groups per thread
  // rather than many short tasks: each call first lays out all activation rows for its tile loop, which
  // only pays off over many groups (0: no such preference, as in every VSERVE_DEFINE_KERNEL_SET set).
  size_t packedLongTasksFrom;
  // Optional: prefill matmuls on bf16 tiles (nullptr in every VSERVE_DEFINE_KERNEL_SET set).
  const BF16Kernels* bf16 = nullptr;
  // Optional: attention over f32 K and V with llama.cpp's arithmetic (avx512_llama_cpp_attention.h), for a
  // head size that is a multiple of 64 and at most 256 (nullptr in every VSERVE_DEFINE_KERNEL_SET set).
  void (*attendF32InLlamaCppOrder)(const LlamaCppAttention& a) = nullptr;
  // Optional: out = softmax(x) over len values as llama.cpp's AVX-512 build computes it (its vector exp
  // on each whole 16 values, expf on the rest; elementwise.cc's softmax). nullptr: expf on every value.
  void (*softmaxRowInLlamaCppOrder)(float* out, const float* x, size_t len) = nullptr;
};

// Defines `accessor()` returning the kernel set of an ISA file from the functions that file defines under
// the standard names (quantizeRows, quantizeSuperRows, matmulQ8_0, ... readAll, softmaxTile, expWeights,
// geglu, swiglu, addRows) in its anonymous namespace, plus its optional kernels (each a function name, or nullptr where
// the ISA has none).
#define VSERVE_DEFINE_KERNEL_SET(accessor, isaName, q4k, q6k, q8Packed, q4Packed, q4kPacked, q6kPacked, scores,   \
                                 accumulate, kvTileTable, superBlockTable, block32Table)                         \
  const KernelSet& accessor() {                                                                                  \
    static const KernelSet kSet{isaName,    quantizeRows, quantizeSuperRows, matmulQ8_0, matmulQ4_0,             \
                                q4k,        q6k,          matmulF32,         matmulF16,  matmulBF16,             \
                                dot,        axpy,         scale,             readAll,    q8Packed,               \
                                q4Packed,   q4kPacked,    q6kPacked,         scores,     accumulate,             \
                                softmaxTile, expWeights,  geglu,             swiglu,      addRows,               \
                                kvTileTable, superBlockTable, block32Table, 0};                                  \
    return kSet;                                                                                                 \
  }

const KernelSet& portableKernels();
// The Q2_K / Q3_K / Q5_K / IQ4_XS kernels of an ISA, from its *_superblock_kernels.cc.
const SuperBlockKernels* portableSuperBlockKernels();
// The Block32Kernels of each ISA, from their own files (*_block32_kernels.cc).
const Block32Kernels* portableBlock32Kernels();
#if defined(__x86_64__) || defined(_M_X64)
const KernelSet& avx2Kernels();
const KernelSet& avx512Kernels();
// The KV-format tile kernels of an ISA (kKVFormatCount entries), from their own file (*_kv_tiles.cc).
const KVTileKernels* avx2KVTiles();
const KVTileKernels* avx512KVTiles();
const SuperBlockKernels* avx2SuperBlockKernels();
const SuperBlockKernels* avx512SuperBlockKernels();
const Block32Kernels* avx2Block32Kernels();
const Block32Kernels* avx512Block32Kernels();
// The packed IQ4_NL, Q5_0, Q4_1 and Q5_1 kernels of the Block32Kernels tables, defined next to the other
// packed kernels (avx512_kernels.cc, avx2_kernels.cc).
void avx512MatmulIQ4_NLPacked(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
void avx512MatmulQ5_0Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
void avx512MatmulQ4_1Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
void avx512MatmulQ5_1Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
// The AVX-512 set with AMX-INT8 tile kernels for its packed matmuls of 16 activation rows and more
// (amx_packed_kernels.cc); only for CPUs where amxUsable() (cpu_features.h).
const KernelSet& avx512AmxKernels();
// The avx512-amx set with AMX-BF16 prefill matmuls (amx_bf16_kernels.cc); only where amxBF16Usable().
const KernelSet& avx512AmxBF16Kernels();
// Their AVX2 forms.
void avx2MatmulIQ4_NLPacked(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
void avx2MatmulQ5_0Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
void avx2MatmulQ4_1Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
void avx2MatmulQ5_1Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range);
// The packed Q5_K, IQ4_XS and Q3_K kernels of avx2_packed_kernels.h, for the AVX2 super-block table.
void avx2MatmulQ5_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
void avx2MatmulIQ4_XSPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
void avx2MatmulQ3_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
void avx2MatmulQ2_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range);
#endif
#if defined(__aarch64__)
const KernelSet& neonKernels();
const KVTileKernels* neonKVTiles();
const SuperBlockKernels* neonSuperBlockKernels();
const Block32Kernels* neonBlock32Kernels();
#endif

}  // namespace vserve
