// AVX-512 kernels (F, BW, VL, DQ, VNNI + F16C/FMA). Compiled only into the avx512 static library with
// those flags; selected at run time when the CPU reports all of them.
//
// Int8 matmul: activations are stored as u = q + 128 and weights are unpacked to signed bytes, so one
// vpdpbusd computes sum(u * w) = sum(q * w) + 128 * sum(w); the 128 * sum(w) term depends only on the
// weight block and is computed once per block and reused for every activation row of a tile.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../cpu_features.h"
#include "../fast_exp.h"
#include "../gelu.h"
#include "../ggml_types.h"
#include "../kernel_set.h"
#include "../packed_weights.h"
#include "add_rows.h"
#include "avx512_llama_cpp_attention.h"
#include "avx512_llama_cpp_order.h"
#include "avx512_attention_tiles.h"
#include "avx512_kquant_rows.h"
#include "packed_group_loop.h"
#include "avx512_q6k_packed_runs.h"
#include "avx512_packed_q4k_tile.h"
#include "kquant_blocks.h"
#include "avx512_block_pair_tiles.h"
#include "tile_grid.h"
#include "weight_prefetch.h"

namespace vserve {
namespace {

// ---- activation quantization ----

void quantizeRows(const float* x, size_t rows, size_t cols, uint8_t* q, float* d, float* s) {
  const size_t blocks = rows * (cols / kQKBlock);
  const __m128i offset = _mm_set1_epi8(char(0x80));
  for (size_t b = 0; b < blocks; b++, x += kQKBlock, q += kQKBlock) {
    const __m512 lo = _mm512_loadu_ps(x);
    const __m512 hi = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
    const float scale = amax / 127.0f;
    d[b] = _cvtsh_ss(_cvtss_sh(scale, _MM_FROUND_TO_NEAREST_INT));
    const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    const __m512i ilo = _mm512_cvtps_epi32(_mm512_mul_ps(lo, inv));
    const __m512i ihi = _mm512_cvtps_epi32(_mm512_mul_ps(hi, inv));
    const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(ilo, ihi));
    s[b] = _cvtsh_ss(_cvtss_sh(scale * float(sum), _MM_FROUND_TO_NEAREST_INT));
    const __m128i qlo = _mm512_cvtsepi32_epi8(ilo);
    const __m128i qhi = _mm512_cvtsepi32_epi8(ihi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm_xor_si128(qlo, offset));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm_xor_si128(qhi, offset));
  }
}

void quantizeSuperRows(const float* x, size_t rows, size_t cols, int8_t* q, float* d, float* s) {
  constexpr int kVecs = kQKSuper / 16;
  const size_t supers = rows * (cols / kQKSuper);
  for (size_t b = 0; b < supers; b++, x += kQKSuper, q += kQKSuper, d += kQKSuper / kQKBlock, s += kQKSuper / 16) {
    __m512 amaxv = _mm512_setzero_ps();
    for (int k = 0; k < kVecs; k++) amaxv = _mm512_max_ps(amaxv, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)));
    const float amax = _mm512_reduce_max_ps(amaxv);
    float iscale = 0.0f, scale = 0.0f;
    if (amax > 0.0f) {
      // The sign comes from the first value of largest magnitude.
      const __m512 target = _mm512_set1_ps(amax);
      int at = 0;
      for (int k = 0; k < kVecs; k++) {
        const __mmask16 hits = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)), target, _CMP_EQ_OQ);
        if (hits != 0) {
          at = 16 * k + __builtin_ctz(unsigned(hits));
          break;
        }
      }
      iscale = -127.0f / x[at];
      scale = 1.0f / iscale;
    }
    const __m512 mul = _mm512_set1_ps(iscale);
    for (int k = 0; k < kVecs; k++) {
      const __m512i i32 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * k), mul));
      s[k] = scale * float(_mm512_reduce_add_epi32(i32));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16 * k), _mm512_cvtsepi32_epi8(i32));
    }
    for (int k = 0; k < kQKSuper / kQKBlock; k++) d[k] = scale;
  }
}

// ---- weight block formats: two blocks at a time as 64 bytes, or a lone block in the low half ----
// Signed weights (Q8_0) go against u = q + 128 and subtract 128 * sum(w) (a weight-side term).
// Unsigned weights (Q4_0 nibbles, stored as value + 8) go against signed q and subtract 8 * sum(q),
// an activation-side term shared by every weight row of a tile; no per-weight correction is needed.

template <int kBytes>
inline __m512 weightScales(const uint8_t* blk, bool pair) {
  const __m128i lo = _mm_set1_epi16(short(loadU16(blk)));
  const __m128i hi = pair ? _mm_set1_epi16(short(loadU16(blk + kBytes))) : _mm_setzero_si128();
  return _mm512_cvtph_ps(_mm256_set_m128i(hi, lo));
}

struct Q8_0Blocks {
  static constexpr int kBytes = kQ8_0Bytes;
  static constexpr bool kUnsigned = false;
  static __m512i load(const uint8_t* blk, bool pair) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    if (!pair) return _mm512_zextsi256_si512(a);
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kBytes + 2));
    return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
  }
};

struct Q4_0Blocks {
  static constexpr int kBytes = kQ4_0Bytes;
  static constexpr bool kUnsigned = true;
  static constexpr char kOffset = 8;
  static __m512i load(const uint8_t* blk, bool pair) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m128i b = pair ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kBytes + 2)) : _mm_setzero_si128();
    // [a, a, b, b] per 128-bit lane, then the odd lanes take the high nibbles: elements 16..31.
    const __m512i spread = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3),
                                                    _mm512_castsi256_si512(_mm256_set_m128i(b, a)));
    const __m512i shifts = _mm512_setr_epi64(0, 0, 0x0004000400040004LL, 0x0004000400040004LL, 0, 0,
                                             0x0004000400040004LL, 0x0004000400040004LL);
    return _mm512_and_si512(_mm512_srlv_epi16(spread, shifts), _mm512_set1_epi8(0x0f));  // b = 0 for a lone block
  }
};

inline __m512 activationScales(const float* d, bool pair) {
  const __m256 hi = pair ? _mm256_set1_ps(d[1]) : _mm256_setzero_ps();
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(d[0])), hi, 1);
}

inline __m512i activationQuants(const uint8_t* q, bool pair) {
  if (pair) return _mm512_loadu_si512(q);
  return _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
}

// One step (two blocks, or the lone last block) of an RW x RX tile: RW weight rows by RX activation rows.
template <class F, int RW, int RX>
inline void quantStep(__m512 (&acc)[RW][RX], const uint8_t* const (&wr)[RW], const uint8_t* const (&xq)[RX],
                      const float* const (&xd)[RX], size_t b, bool pair) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i offset = _mm512_set1_epi8(char(0x80));
  __m512i wv[RW], wcorr[RW];
  __m512 ws[RW];
  for (int j = 0; j < RW; j++) {
    const uint8_t* blk = wr[j] + b * F::kBytes;
    prefetchWeights(blk + kWeightPrefetchBytes);
    wv[j] = F::load(blk, pair);
    ws[j] = weightScales<F::kBytes>(blk, pair);
    if constexpr (!F::kUnsigned) wcorr[j] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, offset, wv[j]));
  }
  for (int i = 0; i < RX; i++) {
    const __m512i xu = activationQuants(xq[i] + b * kQKBlock, pair);
    const __m512 xs = activationScales(xd[i] + b, pair);
    if constexpr (F::kUnsigned) {
      const __m512i xsigned = _mm512_xor_si512(xu, offset);
      const __m512i xcorr = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(F::kOffset), xsigned));
      for (int j = 0; j < RW; j++) {
        const __m512i dotq = _mm512_dpbusd_epi32(xcorr, wv[j], xsigned);
        acc[j][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dotq), _mm512_mul_ps(ws[j], xs), acc[j][i]);
      }
    } else {
      for (int j = 0; j < RW; j++) {
        const __m512i dotq = _mm512_dpbusd_epi32(wcorr[j], xu, wv[j]);
        acc[j][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dotq), _mm512_mul_ps(ws[j], xs), acc[j][i]);
      }
    }
  }
}

struct QuantStep {
  template <class F, int RW, int RX>
  static void run(__m512 (&acc)[RW][RX], const uint8_t* const (&wr)[RW], const uint8_t* const (&xq)[RX],
                  const float* const (&xd)[RX], const float* const (&)[RX], size_t b, bool pair) {
    quantStep<F, RW, RX>(acc, wr, xq, xd, b, pair);
  }
};

template <class F>
void matmulQuant(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulBlockPairs<F, QuantStep>(x, w, range);
}

void matmulQ8_0(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulQuant<Q8_0Blocks>(x, w, range);
}
void matmulQ4_0(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulQuant<Q4_0Blocks>(x, w, range);
}

// ---- K-quants: KQuantRows against Q4_K / Q6_K super-blocks ----
// The weights are unsigned (nibbles, 6-bit values), so they are the u8 side of vpdpbusd and the
// activations the signed side. Each int32 lane of a dot covers 4 values of one sub-block and one
// activation block, so it is scaled by (d * sub-block scale) x (activation block scale), lane by lane;
// the sub-block offsets (Q4_K's mins, Q6_K's -32) multiply the activation sums KQuantRows carries.
// The tiling (KQuantKernel) is in avx512_kquant_rows.h.

// Q4_K. A dot vector takes 4 sub-blocks, one per 128-bit lane (16 values of each): vector A0 holds
// values 0-15 of sub-blocks 0-3 and A1 values 16-31; B0, B1 the same for sub-blocks 4-7. Two dots
// (A, B) per super-block, and a lane's sub-block is the same in both vectors of a pair, so one scale
// multiply serves 32 values of each sub-block.
struct Q4_K {
  static constexpr int kBytes = kQ4_KBytes;

  struct Weights {
    __m512i q[4];           // A0, A1, B0, B1
    __m512 scaleA, scaleB;  // lane l: d * scale of sub-block l / 4 (A) or 4 + l / 4 (B)
    __m512 mins;            // lane l: -dmin * min of sub-block l / 2, against the 16 activation sums
  };

  struct Acts {
    __m512i q[4];   // arranged as the weights
    __m512 dA, dB;  // lane l: scale of activation block l / 4 (A) or 4 + l / 4 (B)
    __m512 s;       // the 16 scaled sums
  };

  static void decode(const uint8_t* blk, Weights& w) {
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(loadU16(blk)));
    const __m512 negDmin = _mm512_set1_ps(-_cvtsh_ss(loadU16(blk + 2)));
    uint64_t scales, mins;
    unpackQ4_KScales(blk + kQ4_KScalesAt, &scales, &mins);
    const __m512 sc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(scales)))), d);
    w.scaleA = _mm512_permutexvar_ps(quarterIndex(0), sc);
    w.scaleB = _mm512_permutexvar_ps(quarterIndex(4), sc);
    const __m128i m = _mm_cvtsi64_si128(int64_t(mins));
    w.mins = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(m, m))), negDmin);
    // Quant bytes 0-63 hold sub-blocks 0-3: 128-bit lane c of A0 is bytes 0-15 (c = 0, 1) or 32-47
    // (c = 2, 3), low nibbles in even lanes and high nibbles in odd ones; A1 the same from bytes 16 / 48.
    const __m512i low = _mm512_set1_epi8(0x0f);
    const __m512i shifts = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4);
    for (int half = 0; half < 2; half++) {
      const __m512i bytes = _mm512_loadu_si512(blk + kQ4_KQuantsAt + 64 * half);
      w.q[2 * half] = _mm512_and_si512(_mm512_srlv_epi64(_mm512_shuffle_i64x2(bytes, bytes, 0xa0), shifts), low);
      w.q[2 * half + 1] = _mm512_and_si512(_mm512_srlv_epi64(_mm512_shuffle_i64x2(bytes, bytes, 0xf5), shifts), low);
    }
  }

  static void load(const KQuantRows& x, size_t row, size_t b, Acts& a) {
    const int8_t* q = x.q + row * x.cols + b * kQKSuper;
    for (int half = 0; half < 2; half++) {
      const __m512i lo = _mm512_loadu_si512(q + 128 * half), hi = _mm512_loadu_si512(q + 128 * half + 64);
      a.q[2 * half] = _mm512_shuffle_i64x2(lo, hi, 0x88);      // values 0-15 of each 32
      a.q[2 * half + 1] = _mm512_shuffle_i64x2(lo, hi, 0xdd);  // values 16-31
    }
    const __m512 d = _mm512_castps256_ps512(_mm256_loadu_ps(x.d + row * (x.cols / kQKBlock) + b * 8));
    a.dA = _mm512_permutexvar_ps(quarterIndex(0), d);
    a.dB = _mm512_permutexvar_ps(quarterIndex(4), d);
    a.s = _mm512_loadu_ps(x.s + row * (x.cols / 16) + b * 16);
  }

  static __m512 accumulate(__m512 acc, const Weights& w, const Acts& a) {
    const __m512i zero = _mm512_setzero_si512();
    const __m512i dotA = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, w.q[0], a.q[0]), w.q[1], a.q[1]);
    const __m512i dotB = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, w.q[2], a.q[2]), w.q[3], a.q[3]);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dotA), _mm512_mul_ps(w.scaleA, a.dA), acc);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dotB), _mm512_mul_ps(w.scaleB, a.dB), acc);
    return _mm512_fmadd_ps(w.mins, a.s, acc);
  }
};

// Q6_K. Dot vector k is values 64k..64k+63 in order: lane l is sub-block 4k + l / 4 and activation
// block 2k + l / 8.
struct Q6_K {
  static constexpr int kBytes = kQ6_KBytes;

  struct Weights {
    __m512i q[4];      // 0..63 (the stored value + 32)
    __m512 scale[4];   // lane l of vector k: d * scale of sub-block 4k + l / 4
    __m512 offsets;    // lane j: -32 * d * scale_j, against the 16 activation sums
  };

  struct Acts {
    __m512i q[4];
    __m512 d[4];  // lane l of vector k: scale of activation block 2k + l / 8
    __m512 s;
  };

  static void decode(const uint8_t* blk, Weights& w) {
    // Values 0-31 of each 128 take qh bits 0-1, 32-63 bits 2-3 (low 4 bits from ql's low nibbles);
    // values 64-95 bits 4-5 and 96-127 bits 6-7 (ql's high nibbles). Shifting qh per 256-bit half
    // puts the right 2 bits at bits 4-5 of each byte.
    const __m512i low = _mm512_set1_epi8(0x0f), high = _mm512_set1_epi8(0x30);
    const __m512i up = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i down = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    for (int half = 0; half < 2; half++) {
      const __m512i ql = _mm512_loadu_si512(blk + 64 * half);
      const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kQ6_KHighAt + 32 * half)));
      w.q[2 * half] = _mm512_or_si512(_mm512_and_si512(ql, low), _mm512_and_si512(_mm512_sllv_epi16(qh, up), high));
      w.q[2 * half + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low),
                                          _mm512_and_si512(_mm512_srlv_epi16(qh, down), high));
    }
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kQ6_KScalesAt));
    const __m512 sc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc8)), _mm512_set1_ps(_cvtsh_ss(loadU16(blk + kQ6_KDAt))));
    for (int k = 0; k < 4; k++) w.scale[k] = _mm512_permutexvar_ps(quarterIndex(4 * k), sc);
    w.offsets = _mm512_mul_ps(sc, _mm512_set1_ps(-32.0f));
  }

  static void load(const KQuantRows& x, size_t row, size_t b, Acts& a) {
    const int8_t* q = x.q + row * x.cols + b * kQKSuper;
    const __m512 d = _mm512_castps256_ps512(_mm256_loadu_ps(x.d + row * (x.cols / kQKBlock) + b * 8));
    const __m512i eighths = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    for (int k = 0; k < 4; k++) {
      a.q[k] = _mm512_loadu_si512(q + 64 * k);
      a.d[k] = _mm512_permutexvar_ps(_mm512_add_epi32(eighths, _mm512_set1_epi32(2 * k)), d);
    }
    a.s = _mm512_loadu_ps(x.s + row * (x.cols / 16) + b * 16);
  }

  static __m512 accumulate(__m512 acc, const Weights& w, const Acts& a) {
    const __m512i zero = _mm512_setzero_si512();
    for (int k = 0; k < 4; k++) {
      const __m512i dotq = _mm512_dpbusd_epi32(zero, w.q[k], a.q[k]);
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dotq), _mm512_mul_ps(w.scale[k], a.d[k]), acc);
    }
    return _mm512_fmadd_ps(w.offsets, a.s, acc);
  }
};

void matmulQ4_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<2, 4>(KQuantKernel<Q4_K>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}
void matmulQ6_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<2, 4>(KQuantKernel<Q6_K>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}

// ---- packed weights (packed_weights.h): one lane per weight row, 16 rows per vector ----
// A block column of a group unpacks to 8 quant vectors; vector k pairs with activation dword k. It holds
// the 16 rows' f16 scales, then the quants (WithMin puts the mins between them).
struct ScalesThenQuants {
  static constexpr bool kHasMin = false;
  static constexpr size_t kQuantsAt = 32;
};

struct Q8_0Packed : ScalesThenQuants {
  static constexpr size_t kBlockBytes = 32 + 16 * 32;
  static constexpr int kBias = 128;  // packedBias(kQ8_0)
  // Software prefetch only from 2 activation rows up. At n = 1 (decode) the loop is light enough that
  // out-of-order execution and the hardware prefetchers keep more reads in flight without it: measured
  // 0.86-0.91 of the read-bandwidth probe without vs 0.81-0.86 with, at this host's high-bandwidth level
  // (equal at its low one). From n = 2 on, and for Q4_0's heavier unpacking, prefetching still wins.
  static constexpr size_t kMinRowsToPrefetch = 2;
  static void unpack(const uint8_t* p, __m512i (&w)[8]) {
    for (int k = 0; k < 8; k++) w[k] = _mm512_loadu_si512(p + 64 * k);
  }
};

struct Q4_0Packed : ScalesThenQuants {
  static constexpr size_t kBlockBytes = 32 + 16 * 16;
  static constexpr size_t kMinRowsToPrefetch = 1;
  static void unpack(const uint8_t* p, __m512i (&w)[8]) {
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (int k = 0; k < 4; k++) {
      const __m512i v = _mm512_loadu_si512(p + 64 * k);
      w[k] = _mm512_and_si512(v, low);
      w[k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
    }
  }
};

// IQ4_NL packs as Q4_0 does; its nibbles index the 16-entry codebook, one byte shuffle per vector,
// giving value + 128 (unsigned, like Q8_0's packed quants; the bias is 128).
struct IQ4_NLPacked : ScalesThenQuants {
  static constexpr size_t kBlockBytes = Q4_0Packed::kBlockBytes;
  static constexpr size_t kMinRowsToPrefetch = 1;
  static void unpack(const uint8_t* p, __m512i (&w)[8]) {
    const __m128i values = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4_NLValues));
    const __m512i table = _mm512_broadcast_i32x4(_mm_xor_si128(values, _mm_set1_epi8(char(0x80))));
    Q4_0Packed::unpack(p, w);
    for (int k = 0; k < 8; k++) w[k] = _mm512_shuffle_epi8(table, w[k]);
  }
};

// Q5_0 packs as Q4_0 does, followed by the fifth bits as 8 byte masks, one per quant vector (bit j: byte j
// of that vector); a masked byte add puts 16 on the bytes whose bit is set, giving value + 16 (the bias).
struct Q5_0Packed : ScalesThenQuants {
  static constexpr size_t kBlockBytes = Q4_0Packed::kBlockBytes + 8 * 8;
  static constexpr int kBias = 16;  // packedBias(kQ5_0)
  static constexpr size_t kMinRowsToPrefetch = 1;
  static void unpack(const uint8_t* p, __m512i (&w)[8]) {
    const __m512i sixteen = _mm512_set1_epi8(16);
    Q4_0Packed::unpack(p, w);
    for (int k = 0; k < 8; k++) {
      uint64_t bits;
      std::memcpy(&bits, p + 16 * 16 + 8 * k, 8);
      w[k] = _mm512_mask_add_epi8(w[k], _cvtu64_mask64(bits), w[k], sixteen);
    }
  }
};

// Q4_1 and Q5_1 pack as Q4_0 and Q5_0 do with their 16 f16 mins after the scales. Their quants are
// unsigned as they stand (bias 0), and each block adds m * s_x.
template <class Quants>
struct WithMin : Quants {
  static constexpr size_t kBlockBytes = Quants::kBlockBytes + 32;
  static constexpr bool kHasMin = true;
  static constexpr int kBias = 0;  // packedBias(kQ4_1), packedBias(kQ5_1)
  static constexpr size_t kQuantsAt = 64;
};
using Q4_1Packed = WithMin<Q4_0Packed>;
using Q5_1Packed = WithMin<Q5_0Packed>;

// 16 weight rows (one group) x RX activation rows from i0.
template <class F, int RX>
void packedTile(const SignedRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
  const size_t blocks = x.cols / kQKBlock;
  __m512 acc[RX];
  for (int i = 0; i < RX; i++) acc[i] = _mm512_setzero_ps();
  const uint8_t* p = group;
  const bool prefetch = x.rows >= F::kMinRowsToPrefetch;
  for (size_t b = 0; b < blocks; b++, p += F::kBlockBytes) {
    // One sequential stream per group, but prefetching well ahead still measured faster (see kMinRowsToPrefetch).
    if (prefetch) {
      prefetchWeightLines(p + kWeightPrefetchBytes, F::kBlockBytes);
    }
    const __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    __m512 wm = _mm512_setzero_ps();
    if constexpr (F::kHasMin) wm = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)));
    __m512i w[8];
    F::unpack(p + F::kQuantsAt, w);
    for (int i = 0; i < RX; i++) {
      const int8_t* xq = x.q + (i0 + i) * x.cols + b * kQKBlock;
      // Two dependency chains; the first starts from -bias * sum(q) to cancel the weights' offset.
      __m512i d0 = _mm512_set1_epi32(-x.bias[(i0 + i) * blocks + b]);
      __m512i d1 = _mm512_setzero_si512();
      for (int k = 0; k < 8; k += 2) {
        d0 = _mm512_dpbusd_epi32(d0, w[k], broadcastDword(xq + 4 * k));
        d1 = _mm512_dpbusd_epi32(d1, w[k + 1], broadcastDword(xq + 4 * k + 4));
      }
      const __m512 scale = _mm512_mul_ps(ws, _mm512_set1_ps(x.d[(i0 + i) * blocks + b]));
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(d0, d1)), scale, acc[i]);
      if constexpr (F::kHasMin) acc[i] = _mm512_fmadd_ps(wm, _mm512_set1_ps(x.s[(i0 + i) * blocks + b]), acc[i]);
    }
  }
  for (int i = 0; i < RX; i++) _mm512_storeu_ps(out + (i0 + i) * outStride, acc[i]);
}

// Q8_0, Q5_0, Q4_1 or Q5_1 weights against R activation rows from i0 (R = 1 or 2), summed in llama.cpp's
// order for these types, which it does not repack: its dot product of a row keeps eight f32 partial sums,
// sum k adding each block's d_w * d_x times the integer dot of values 4k..4k+3 in one fused multiply-add,
// and adds them up at the end as ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)); the types with a
// minimum add m * s_x per block into a ninth sum, added last. Its prefill takes the same dot product for
// every (row, column), so the same sums in the same order give its results to the bit in prefill and
// decode alike, and the two engines stay on the same numbers. Vector k of a packed block is values
// 4k..4k+3 of 16 rows, so each sum is one vector. That is 8 conversions and multiply-adds per block and
// activation row instead of packedTile's 1, and 8 accumulators per row, so rows go two at a time.
template <class F, int R>
void packedRowsInLlamaCppOrder(const SignedRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
  const size_t blocks = x.cols / kQKBlock;
  __m512 acc[R][8], mins[R];
  for (int r = 0; r < R; r++) {
    for (int k = 0; k < 8; k++) acc[r][k] = _mm512_setzero_ps();
    mins[r] = _mm512_setzero_ps();
  }
  const bool prefetch = x.rows >= F::kMinRowsToPrefetch;
  const uint8_t* p = group;
  for (size_t b = 0; b < blocks; b++, p += F::kBlockBytes) {
    if (prefetch) prefetchWeightLines(p + kWeightPrefetchBytes, F::kBlockBytes);
    const __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    __m512 wm = _mm512_setzero_ps();
    if constexpr (F::kHasMin) wm = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)));
    __m512i w[8];
    F::unpack(p + F::kQuantsAt, w);
    for (int r = 0; r < R; r++) {
      const size_t row = i0 + r;
      const __m512 scale = _mm512_mul_ps(ws, _mm512_set1_ps(x.d[row * blocks + b]));
      if constexpr (F::kHasMin) mins[r] = _mm512_fmadd_ps(wm, _mm512_set1_ps(x.s[row * blocks + b]), mins[r]);
      const int8_t* xq = x.q + row * x.cols + b * kQKBlock;
      // The weights carry +kBias (0 for the types with a minimum): dot k starts from -kBias * (the sum of
      // activations 4k..4k+3) to cancel it.
      int32_t start[8];
      offsetStarts(xq, F::kBias, start);
      for (int k = 0; k < 8; k++) {
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_set1_epi32(start[k]), w[k], broadcastDword(xq + 4 * k));
        acc[r][k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[r][k]);
      }
    }
  }
  for (int r = 0; r < R; r++) {
    __m512 sum = sumLanesInLlamaCppOrder(acc[r]);
    if constexpr (F::kHasMin) sum = _mm512_add_ps(sum, mins[r]);
    _mm512_storeu_ps(out + (i0 + r) * outStride, sum);
  }
}

// Every packed format runs the same group loop (packed_group_loop.h): tiles of 8 activation rows, so each
// group's decoded weights serve 8 rows before they are decoded again (4 left prefill waiting on decoding).
template <class Tiles, class Rows>
void matmulPacked(const Rows& x, const uint8_t* w, const MatmulRange& range) {
  packedGroups<Tiles, 8>(x, w, Tiles::groupBytes(x.cols), range);
}

template <class F, bool kInLlamaCppOrder = false>
struct SignedTiles {
  static size_t groupBytes(size_t cols) { return cols / kQKBlock * F::kBlockBytes; }
  template <int RX>
  static void tile(const SignedRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
    // Decode always (its cost hides behind the weight reads); prefill when asked (prefillInLlamaCppOrder).
    if constexpr (kInLlamaCppOrder) {
      if (x.rows == 1 || prefillInLlamaCppOrder()) {
        int i = 0;
        for (; i + 2 <= RX; i += 2) packedRowsInLlamaCppOrder<F, 2>(x, group, i0 + i, out, outStride);
        if (i < RX) packedRowsInLlamaCppOrder<F, 1>(x, group, i0 + i, out, outStride);
        return;
      }
    }
    packedTile<F, RX>(x, group, i0, out, outStride);
  }
};

void matmulQ8_0Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulPacked<SignedTiles<Q8_0Packed, true>>(x, w, range);
}
void matmulQ4_0Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulPacked<SignedTiles<Q4_0Packed>>(x, w, range);
}
void matmulIQ4_NLPacked(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulPacked<SignedTiles<IQ4_NLPacked>>(x, w, range);
}
void matmulQ5_0Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulPacked<SignedTiles<Q5_0Packed, true>>(x, w, range);
}
void matmulQ4_1Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulPacked<SignedTiles<Q4_1Packed, true>>(x, w, range);
}
void matmulQ5_1Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulPacked<SignedTiles<Q5_1Packed, true>>(x, w, range);
}

struct Q4_KTiles {
  static size_t groupBytes(size_t cols) { return cols / kQKSuper * kQ4_KPackedBytes; }
  template <int RX>
  static void tile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
    if (x.rows == 1 || !prefillInLlamaCppOrder()) return packedQ4_KLayoutTile<RX, false>(x, group, i0, out, outStride);
    // llama.cpp's order, row by row: its repacked gemm or gemv (a one-row tile), as llamaCppGemmRows says.
    const size_t gemmRows = llamaCppGemmRows(x.rows);
    for (size_t i = i0; i < i0 + RX; i++) packedQ4_KLayoutTile<1, false>(x, group, i, out, outStride, i < gemmRows);
  }
};

void matmulQ4_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulPacked<Q4_KTiles>(x, w, range); }

// Run C of half h of a packed Q6_K super-block against RX activation rows from i0 (values 128h + 32C..,
// sub-blocks 8h + 2C and the next): the 8 weight vectors are merged from ql nibbles and qh bit pairs once,
// then each activation row takes 8 vpdpbusd against broadcast activation dwords and one scale
// multiply-add per sub-block. `sc` holds the super-block's 16 d * scale vectors.
template <int C, int RX>
inline void packedQ6_KRun(const KQuantRows& x, const uint8_t* ql, const uint8_t* qh, const __m512* sc, size_t i0, size_t b, int h,
                          __m512* acc) {
  const size_t blocks = x.cols / kQKBlock;
  __m512i w[8];
  for (int k = 0; k < 8; k++) w[k] = q6kPackedRunVector<C>(ql, qh, k);
  const int j = 8 * h + 2 * C;  // sub-blocks j (k < 4) and j + 1
  for (int i = 0; i < RX; i++) {
    const int8_t* xq = x.q + (i0 + i) * x.cols + b * kQKSuper + 128 * h + 32 * C;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, b0 = a0, b1 = a0;
    a0 = _mm512_dpbusd_epi32(a0, w[0], broadcastDword(xq));
    a1 = _mm512_dpbusd_epi32(a1, w[1], broadcastDword(xq + 4));
    b0 = _mm512_dpbusd_epi32(b0, w[4], broadcastDword(xq + 16));
    b1 = _mm512_dpbusd_epi32(b1, w[5], broadcastDword(xq + 20));
    a0 = _mm512_dpbusd_epi32(a0, w[2], broadcastDword(xq + 8));
    a1 = _mm512_dpbusd_epi32(a1, w[3], broadcastDword(xq + 12));
    b0 = _mm512_dpbusd_epi32(b0, w[6], broadcastDword(xq + 24));
    b1 = _mm512_dpbusd_epi32(b1, w[7], broadcastDword(xq + 28));
    const __m512 dx = _mm512_set1_ps(x.d[(i0 + i) * blocks + b * 8 + 4 * h + C]);
    acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0, a1)), _mm512_mul_ps(sc[j], dx), acc[i]);
    acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(b0, b1)), _mm512_mul_ps(sc[j + 1], dx), acc[i]);
  }
}

// Packed Q6_K (packed_weights.h), 16 weight rows (one group) x RX activation rows from i0. Per super-block,
// the 16 rows' d * scale products are made once (16 vectors, one per sub-block) and the -32 offsets go
// against the activation sums; then the eight runs of 32 values (packedQ6_KRun).
template <int RX>
void packedQ6_KTile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
  const size_t supers = x.cols / kQKSuper;
  const size_t sums = x.cols / 16;
  __m512 acc[RX];
  for (int i = 0; i < RX; i++) acc[i] = _mm512_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kQ6_KPackedBytes) {
    prefetchWeightLines(p + kWeightPrefetchBytes, kQ6_KPackedBytes);
    const __m512 d = _mm512_loadu_ps(p);
    const uint8_t* scales = p + kQ6_KPackedScalesAt;
    __m512 sc[16];  // lane r: d * scale of sub-block j of row r
    for (int j = 0; j < 16; j++) {
      sc[j] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 16 * j)))), d);
      for (int i = 0; i < RX; i++) {
        acc[i] = _mm512_fmadd_ps(sc[j], _mm512_set1_ps(-32.0f * x.s[(i0 + i) * sums + b * 16 + j]), acc[i]);
      }
    }
    for (int h = 0; h < 2; h++) {
      const uint8_t* ql = p + kQ6_KPackedLowAt + 1024 * h;
      const uint8_t* qh = p + kQ6_KPackedHighAt + 512 * h;
      packedQ6_KRun<0, RX>(x, ql, qh, sc, i0, b, h, acc);
      packedQ6_KRun<1, RX>(x, ql, qh, sc, i0, b, h, acc);
      packedQ6_KRun<2, RX>(x, ql, qh, sc, i0, b, h, acc);
      packedQ6_KRun<3, RX>(x, ql, qh, sc, i0, b, h, acc);
    }
  }
  for (int i = 0; i < RX; i++) _mm512_storeu_ps(out + (i0 + i) * outStride, acc[i]);
}

// Chunk C of half h into llama.cpp's eight integer lanes (packedQ6_KRowInLlamaCppOrder): lane k takes the
// dot of the chunk's values 4k..4k+3 (|dot| < 2^15) times the sub-block scale of those values, whose low
// int16 halves `scaleLo` (values 0..15) and `scaleHi` (16..31) hold (vpdpwssd's other halves are zero).
template <int C>
inline void q6KChunkIntoLanes(const uint8_t* ql, const uint8_t* qh, const int8_t* xq, __m512i scaleLo, __m512i scaleHi, __m512i (&lanes)[8]) {
  const __m512i zero = _mm512_setzero_si512();
  for (int k = 0; k < 8; k++) {
    const __m512i dot = _mm512_dpbusd_epi32(zero, q6kPackedRunVector<C>(ql, qh, k), broadcastDword(xq + 4 * k));
    lanes[k] = _mm512_dpwssd_epi32(lanes[k], dot, k < 4 ? scaleLo : scaleHi);
  }
}

// One activation row against packed Q6_K in the order of llama.cpp's dot product of that type: per
// super-block, eight integer lanes (lane k: every 32-value chunk's values 4k..4k+3 times their sub-block
// scale, less 32 times sub-blocks 2k and 2k + 1's scales against their activation sums), then
// acc_k += d_x * d_w * lane k in one fused multiply-add, and the lanes added as hsum_float_8 does.
inline void packedQ6_KRowInLlamaCppOrder(const KQuantRows& x, size_t row, const uint8_t* group, float* out) {
  const size_t supers = x.cols / kQKSuper;
  __m512 acc[8];
  for (int k = 0; k < 8; k++) acc[k] = _mm512_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kQ6_KPackedBytes) {
    prefetchWeightLines(p + kWeightPrefetchBytes, kQ6_KPackedBytes);
    const uint8_t* scales = p + kQ6_KPackedScalesAt;
    const auto scale = [&](int j) { return rowScalesLowHalves(scales, j); };
    const int8_t* xq = x.q + row * x.cols + b * kQKSuper;
    const int16_t* sums16 = x.halfBlockSums + row * (x.cols / 16) + b * 16;
    __m512i lanes[8];
    for (int k = 0; k < 8; k++) {
      // -32 * (scale 2k * sum 2k + scale 2k+1 * sum 2k+1): the pair of scales against the pair of sums.
      const __m512i pair = _mm512_or_si512(scale(2 * k), _mm512_slli_epi32(scale(2 * k + 1), 16));
      lanes[k] = _mm512_slli_epi32(_mm512_dpwssd_epi32(_mm512_setzero_si512(), pair, broadcastDword(reinterpret_cast<const int8_t*>(sums16 + 2 * k))), 5);
      lanes[k] = _mm512_sub_epi32(_mm512_setzero_si512(), lanes[k]);
    }
    for (int h = 0; h < 2; h++) {
      const uint8_t* ql = p + kQ6_KPackedLowAt + 1024 * h;
      const uint8_t* qh = p + kQ6_KPackedHighAt + 512 * h;
      const int8_t* xh = xq + 128 * h;
      q6KChunkIntoLanes<0>(ql, qh, xh, scale(8 * h), scale(8 * h + 1), lanes);
      q6KChunkIntoLanes<1>(ql, qh, xh + 32, scale(8 * h + 2), scale(8 * h + 3), lanes);
      q6KChunkIntoLanes<2>(ql, qh, xh + 64, scale(8 * h + 4), scale(8 * h + 5), lanes);
      q6KChunkIntoLanes<3>(ql, qh, xh + 96, scale(8 * h + 6), scale(8 * h + 7), lanes);
    }
    const __m512 d = _mm512_mul_ps(_mm512_loadu_ps(p), _mm512_set1_ps(x.d[row * (x.cols / kQKBlock) + b * 8]));
    for (int k = 0; k < 8; k++) acc[k] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(lanes[k]), acc[k]);
  }
  _mm512_storeu_ps(out, sumLanesInLlamaCppOrder(acc));
}

struct Q6_KTiles {
  static size_t groupBytes(size_t cols) { return cols / kQKSuper * kQ6_KPackedBytes; }
  template <int RX>
  static void tile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
    // llama.cpp does not repack Q6_K on x86 (its order needs the activations' sums per 16 values).
    if (x.halfBlockSums != nullptr && tileRowsInLlamaCppOrder<RX>(x, group, i0, out, outStride, packedQ6_KRowInLlamaCppOrder)) return;
    packedQ6_KTile<RX>(x, group, i0, out, outStride);
  }
};

void matmulQ6_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulPacked<Q6_KTiles>(x, w, range); }

// ---- float weights: 16 columns at a time, converted to f32 on load ----

// The f32 and f16 loaders also add a decode's last cols % 64 products as llama.cpp's vec_dot for their
// type does (floatRowDotInLlamaCppOrder); bf16 rows keep FloatKernel's order.
struct F32Loader {
  using T = float;
  static __m512 load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  static float addLeftovers(float sum, const float* w, const float* x, size_t from, size_t to) {
    for (size_t c = from; c < to; c++) sum = std::fma(w[c], x[c], sum);
    return sum;
  }
};
struct F16Loader {
  using T = uint16_t;
  static __m512 load(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
  static float addLeftovers(float sum, const uint16_t* w, const float* x, size_t from, size_t to) {
    double total = sum;
    for (size_t c = from; c < to; c++) total += double(_cvtsh_ss(w[c]) * x[c]);
    return float(total);
  }
};
struct BF16Loader {
  using T = uint16_t;
  static __m512 load(const uint16_t* p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
  }
};

// A prefill tile: 16 lane sums per output over one block of columns, as llama.cpp's tiled sgemm sums
// (each lane adds its column's products in order; the lanes are added at the end). The sums wait in
// `sums` between blocks, stored and reloaded as they are, so blocking changes no result.
template <class L>
struct FloatKernel {
  static constexpr int kGroupRows = 6;  // weight rows per group (the tile's RW)
  const FloatRows& x;
  const typename L::T* w;
  size_t c0, c1;   // the block's columns
  size_t x0, w0;   // the chunk's first activation row and the group's first weight row
  __m512* sums;    // [activation row - x0][weight row - w0], kGroupRows per activation row

  template <int RW, int RX>
  void tile(size_t i0, size_t r0) const {
    __m512 acc[RW][RX];
    for (int j = 0; j < RW; j++)
      for (int i = 0; i < RX; i++) acc[j][i] = c0 == 0 ? _mm512_setzero_ps() : sums[(i0 + i - x0) * kGroupRows + (r0 + j - w0)];
    for (size_t c = c0; c < c1; c += 16) {
      const size_t left = x.cols - c;
      const __mmask16 m = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
      __m512 wv[RW];
      for (int j = 0; j < RW; j++) wv[j] = L::load(w + (r0 + j) * x.cols + c, m);
      for (int i = 0; i < RX; i++) {
        const __m512 xv = _mm512_maskz_loadu_ps(m, x.x + (i0 + i) * x.cols + c);
        for (int j = 0; j < RW; j++) acc[j][i] = _mm512_fmadd_ps(wv[j], xv, acc[j][i]);
      }
    }
    for (int j = 0; j < RW; j++)
      for (int i = 0; i < RX; i++) sums[(i0 + i - x0) * kGroupRows + (r0 + j - w0)] = acc[j][i];
  }
};

// One token's dot product with a float row as llama.cpp's decode takes it (its vec_dot for f32 and f16
// rows; a prefill goes through its tiled sgemm instead, whose order FloatKernel keeps): four 16-lane
// sums over 64-value steps, added as (s0 + s2) + (s1 + s3) then across lanes, and the last cols % 64
// products added one by one to that total (in f32 for f32 rows, in double for f16 rows).
template <class L>
float floatRowDotInLlamaCppOrder(const typename L::T* w, const float* x, size_t cols) {
  const size_t whole = cols - cols % 64;
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (size_t c = 0; c < whole; c += 64) {
    prefetchWeightLines(reinterpret_cast<const uint8_t*>(w + c) + kWeightPrefetchBytes, 64 * sizeof(typename L::T));
    for (int j = 0; j < 4; j++) acc[j] = _mm512_fmadd_ps(L::load(w + c + 16 * j, 0xffff), _mm512_loadu_ps(x + c + 16 * j), acc[j]);
  }
  return L::addLeftovers(sumHalvingAsLlamaCpp(foldFourAsLlamaCpp(acc)), w, x, whole, cols);
}

template <class L, bool kDecodeInLlamaCppOrder = true>
void matmulFloat(const FloatRows& x, const typename L::T* w, const MatmulRange& range) {
  if constexpr (kDecodeInLlamaCppOrder) {
    if (x.rows == 1) {
      for (size_t r = range.rowBegin; r < range.rowEnd; r++) range.out[r] = floatRowDotInLlamaCppOrder<L>(w + r * x.cols, x.x, x.cols);
      return;
    }
  }
  // Activation rows go 32 at a time (their f32 values stay in L2); past them, groups of 6 weight rows a
  // block of columns at a time, so that the group's part of the block (12 KiB) stays in L1 while every
  // activation tile of the chunk uses it.
  using K = FloatKernel<L>;
  constexpr size_t kActivationChunk = 32;
  constexpr size_t kColumnBlock = 12288 / (K::kGroupRows * sizeof(typename L::T)) / 16 * 16;
  alignas(64) __m512 sums[kActivationChunk * K::kGroupRows];
  for (size_t x0 = 0; x0 < x.rows; x0 += kActivationChunk) {
    const size_t x1 = std::min(x.rows, x0 + kActivationChunk);
    for (size_t w0 = range.rowBegin; w0 < range.rowEnd; w0 += K::kGroupRows) {
      const size_t w1 = std::min(range.rowEnd, w0 + K::kGroupRows);
      for (size_t c0 = 0; c0 < x.cols; c0 += kColumnBlock) {
        tileGrid<K::kGroupRows, 4>(K{x, w, c0, std::min(x.cols, c0 + kColumnBlock), x0, w0, sums}, x0, x1, w0, w1);
      }
      for (size_t i = x0; i < x1; i++)
        for (size_t r = w0; r < w1; r++) range.out[i * range.outStride + r] = _mm512_reduce_add_ps(sums[(i - x0) * K::kGroupRows + (r - w0)]);
    }
  }
}

void matmulF32(const FloatRows& x, const float* w, const MatmulRange& range) { matmulFloat<F32Loader>(x, w, range); }
void matmulF16(const FloatRows& x, const uint16_t* w, const MatmulRange& range) { matmulFloat<F16Loader>(x, w, range); }
void matmulBF16(const FloatRows& x, const uint16_t* w, const MatmulRange& range) { matmulFloat<BF16Loader, false>(x, w, range); }

// ---- vector helpers ----

float dot(const float* a, const float* b, size_t n) { return rowDot<F32Rows>(a, b, n); }

void axpy(float* y, const float* x, float a, size_t n) {
  const __m512 av = _mm512_set1_ps(a);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tailMask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

void scale(float* y, float a, size_t n) {
  const __m512 av = _mm512_set1_ps(a);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tailMask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(av, _mm512_maskz_loadu_ps(m, y + i)));
  }
}

uint64_t readAll(const uint8_t* p, size_t bytes) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 256 <= bytes; i += 256) {
    a0 = _mm512_xor_si512(a0, _mm512_loadu_si512(p + i));
    a1 = _mm512_xor_si512(a1, _mm512_loadu_si512(p + i + 64));
    a2 = _mm512_xor_si512(a2, _mm512_loadu_si512(p + i + 128));
    a3 = _mm512_xor_si512(a3, _mm512_loadu_si512(p + i + 192));
  }
  uint64_t acc = uint64_t(_mm512_reduce_add_epi64(_mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3))));
  for (; i < bytes; i++) acc ^= p[i];
  return acc;
}

// Attention tiles: the loops of avx512_attention_tiles.h on f32 rows.
void scoreTile(const float* q, size_t heads, const float* const* keys, size_t count, size_t d, float scale, float* scores,
               size_t stride, const NextRows& next) {
  scoreRows<F32Rows>(q, heads, keys, count, d, scale, scores, stride, next.rows, next.count);
}

void accumulateTile(float* out, size_t heads, const float* const* values, const float* weights, size_t stride, size_t count, size_t d,
                    const NextRows& next) {
  accumulateRows<F32Rows>(out, heads, values, weights, stride, count, d, next.rows, next.count);
}

// expApprox (fast_exp.h) on 16 lanes: the same range reduction and polynomial; 2^n by scalef.
inline __m512 expApprox16(__m512 x) {
  x = _mm512_min_ps(_mm512_set1_ps(kExpClamp), _mm512_max_ps(_mm512_set1_ps(-kExpClamp), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2High), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Low), r);
  __m512 p = _mm512_set1_ps(kExpTaylor[0]);
  for (int i = 1; i < 7; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpTaylor[i]));
  return _mm512_scalef_ps(p, n);
}

// The scalar form's max and sum loops were dependent chains, one element per step: about half of
// decode attention's time before this.
void softmaxTile(float* scores, size_t heads, size_t stride, size_t count, float* max, float* sum, float* correction) {
  const __m512 minusInf = _mm512_set1_ps(-INFINITY);
  for (size_t h = 0; h < heads; h++) {
    float* s = scores + h * stride;
    __m512 m = minusInf;
    for (size_t p = 0; p < count; p += 16) m = _mm512_max_ps(m, _mm512_mask_loadu_ps(minusInf, tailMask(count - p), s + p));
    const float newMax = std::max(max[h], _mm512_reduce_max_ps(m));
    correction[h] = newMax > max[h] && sum[h] > 0.0f ? std::exp(max[h] - newMax) : 1.0f;
    const __m512 shift = _mm512_set1_ps(newMax);
    __m512 total = _mm512_setzero_ps();
    for (size_t p = 0; p < count; p += 16) {
      const __mmask16 k = tailMask(count - p);
      const __m512 e = _mm512_maskz_mov_ps(k, expApprox16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + p), shift)));
      _mm512_mask_storeu_ps(s + p, k, e);
      total = _mm512_add_ps(total, e);
    }
    sum[h] = sum[h] * correction[h] + _mm512_reduce_add_ps(total);
    max[h] = newMax;
  }
}

// GeGLU: sixteen inputs rounded to f16 (to nearest, as floatToHalf does), their bits index the table.
void geglu(const float* table, float* out, const float* gate, const float* up, size_t len) {
  const __m512 low = _mm512_set1_ps(-10.0f), high = _mm512_set1_ps(10.0f);
  for (size_t i = 0; i < len; i += 16) {
    const __mmask16 m = len - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (len - i)) - 1);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512i index = _mm512_cvtepu16_epi32(_mm512_cvtps_ph(g, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m512 gelu = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, index, table, 4);
    gelu = _mm512_mask_mov_ps(gelu, _mm512_cmp_ps_mask(g, high, _CMP_GE_OQ), g);
    const __m512 product = _mm512_mul_ps(gelu, _mm512_maskz_loadu_ps(m, up + i));
    _mm512_mask_storeu_ps(out + i, m, _mm512_maskz_mov_ps(~_mm512_cmp_ps_mask(g, low, _CMP_LE_OQ), product));
  }
}

// SwiGLU as llama.cpp's AVX-512 build computes it: silu (siluAsLlamaCpp) times up, 16 at a time, and a
// tail of up to 15 through the C library's expf, as its scalar silu takes them.
void swiglu(float* out, const float* gate, const float* up, size_t len) {
  size_t i = 0;
  for (; i + 16 <= len; i += 16) {
    _mm512_storeu_ps(out + i, _mm512_mul_ps(siluAsLlamaCpp(_mm512_loadu_ps(gate + i)), _mm512_loadu_ps(up + i)));
  }
  for (; i < len; i++) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

float expWeights(const float* x, size_t count, float shift, float scale, float floor, float* out) {
  const __m512 vShift = _mm512_set1_ps(shift), vScale = _mm512_set1_ps(scale), vFloor = _mm512_set1_ps(floor);
  const __m512 minusInf = _mm512_set1_ps(-INFINITY);
  __m512 total = _mm512_setzero_ps();
  for (size_t i = 0; i < count; i += 16) {
    const __mmask16 tail = tailMask(count - i);
    const __m512 v = _mm512_mask_loadu_ps(minusInf, tail, x + i);
    const __mmask16 keep = _mm512_cmp_ps_mask(v, vFloor, _CMP_GE_OQ) & _mm512_cmp_ps_mask(v, minusInf, _CMP_GT_OQ);
    const __m512 w = _mm512_maskz_mov_ps(keep, expApprox16(_mm512_mul_ps(_mm512_sub_ps(v, vShift), vScale)));
    _mm512_mask_storeu_ps(out + i, tail, w);
    total = _mm512_add_ps(total, w);
  }
  return _mm512_reduce_add_ps(total);
}

void addRows(float* y, const float* x, size_t stride, const float* a, size_t rows, size_t n) {
  addRowsGeneric(y, x, stride, a, rows, n);
}

}  // namespace

void avx512MatmulIQ4_NLPacked(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulIQ4_NLPacked(x, w, range);
}
void avx512MatmulQ5_0Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulQ5_0Packed(x, w, range);
}
void avx512MatmulQ4_1Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulQ4_1Packed(x, w, range);
}
void avx512MatmulQ5_1Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulQ5_1Packed(x, w, range);
}

namespace {
VSERVE_DEFINE_KERNEL_SET(avx512BaseKernels, "avx512", matmulQ4_K, matmulQ6_K, matmulQ8_0Packed, matmulQ4_0Packed,
                         matmulQ4_KPacked, matmulQ6_KPacked, scoreTile, accumulateTile, avx512KVTiles(),
                         avx512SuperBlockKernels(), avx512Block32Kernels())
}  // namespace

const KernelSet& avx512Kernels() {
  static const KernelSet kSet = [] {
    KernelSet k = avx512BaseKernels();
    k.attendF32InLlamaCppOrder = attendF32InLlamaCppOrder;
    k.softmaxRowInLlamaCppOrder = softmaxRowInLlamaCppOrder;
    return k;
  }();
  return kSet;
}

}  // namespace vserve
