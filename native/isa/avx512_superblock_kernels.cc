// AVX-512 (VNNI) Q2_K / Q3_K / Q5_K / IQ4_XS matmuls on KQuantRows activations, tiled by
// avx512_kquant_rows.h. All four use the in-order layout of the Q6_K kernel: dot vector k holds values
// 64k..64k+63, so lane l of its int32 sums covers 4 values of activation block 2k + l / 8 and of
// sub-block 4k + l / 4 (16-value sub-blocks) or 2k + l / 8 (32-value ones). Weights are the u8 side of
// vpdpbusd, so every format is decoded to unsigned bytes:
//   Q2_K: quants 0..3; offsets -dmin * min per 16 values.
//   Q3_K: value + 4 (0..7); offsets -4 * d * scale.
//   Q5_K: quants 0..31; offsets -dmin * min per sub-block.
//   IQ4_XS: table value + 128 (1..241); offsets -128 * d * scale. vpdpbusd sums into int32 without
//   saturating, so the +128 bias costs one multiply-add per super-block, not a sign trick per row.
// All four also have kernels on weights packed 16 rows at a time (packed_weights.h), below.
#include <immintrin.h>

#include <cstring>

#include "../cpu_features.h"
#include "../ggml_types.h"
#include "../kernel_set.h"
#include "../packed_weights.h"
#include "packed_group_loop.h"
#include "../superblock_unpack.h"
#include "avx512_kquant_rows.h"
#include "avx512_llama_cpp_order.h"
#include "avx512_packed_q4k_tile.h"
#include "iq4_xs_scales.h"
#include "kquant_blocks.h"
#include "tile_grid.h"
#include "weight_prefetch.h"

namespace vserve {
namespace {

struct InOrderWeights {
  __m512i q[4];      // unsigned quants, values 64k..64k+63
  __m512 scale[4];   // lane l of vector k: d * the scale of that lane's sub-block
  __m512 offsets;    // lane j: the offset factor against activation sum j (values 16j..16j+15)
};

struct InOrderActs {
  __m512i q[4];
  __m512 d[4];  // lane l of vector k: scale of activation block 2k + l / 8
  __m512 s;
};

// Lane l -> l / 8 + first: spreads 2 (of 8) per-32-value floats over 16 lanes.
inline __m512i eighthIndex(int first) {
  return _mm512_add_epi32(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), _mm512_set1_epi32(first));
}

// The same 32 bytes in both 256-bit halves.
inline __m512i broadcast32(const uint8_t* p) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Per-half right shifts of 16-bit lanes: `low` for the first 32 bytes, `high` for the second.
inline __m512i halfShifts(int low, int high) {
  return _mm512_inserti64x4(_mm512_set1_epi16(short(low)), _mm256_set1_epi16(short(high)), 1);
}

// Scale lanes for 16-value sub-blocks (Q6_K's arrangement) from the 16 per-sub-block factors.
inline void scalesFor16(__m512 factors, InOrderWeights& w) {
  for (int k = 0; k < 4; k++) w.scale[k] = _mm512_permutexvar_ps(quarterIndex(4 * k), factors);
}
// The same for 32-value sub-blocks, from 8 factors in lanes 0-7.
inline void scalesFor32(__m512 factors, InOrderWeights& w) {
  for (int k = 0; k < 4; k++) w.scale[k] = _mm512_permutexvar_ps(eighthIndex(2 * k), factors);
}

// Format policy over a decoder D (kBytes, decode(blk, InOrderWeights&)).
template <class D>
struct InOrder {
  static constexpr int kBytes = D::kBytes;
  using Weights = InOrderWeights;
  using Acts = InOrderActs;

  static void decode(const uint8_t* blk, Weights& w) { D::decode(blk, w); }

  static void load(const KQuantRows& x, size_t row, size_t b, Acts& a) {
    const int8_t* q = x.q + row * x.cols + b * kQKSuper;
    const __m512 d = _mm512_castps256_ps512(_mm256_loadu_ps(x.d + row * (x.cols / kQKBlock) + b * 8));
    for (int k = 0; k < 4; k++) {
      a.q[k] = _mm512_loadu_si512(q + 64 * k);
      a.d[k] = _mm512_permutexvar_ps(eighthIndex(2 * k), d);
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

// Q2_K and Q3_K: vector k = values 64k..64k+63 = quant byte half h = k / 2, bit pairs s = 2t, 2t + 1
// (t = k % 2) in its two 256-bit halves.
struct Q2_KDecoder {
  static constexpr int kBytes = kQ2_KBytes;
  static void decode(const uint8_t* blk, InOrderWeights& w) {
    const __m512i three = _mm512_set1_epi8(3);
    for (int k = 0; k < 4; k++) {
      const __m512i bytes = broadcast32(blk + kQ2_KQuantsAt + 32 * (k / 2));
      w.q[k] = _mm512_and_si512(_mm512_srlv_epi16(bytes, halfShifts(4 * (k % 2), 4 * (k % 2) + 2)), three);
    }
    const __m512i packed = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    const __m512i nibble = _mm512_set1_epi32(0x0f);
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(loadU16(blk + kQ2_KDAt)));
    const __m512 negDmin = _mm512_set1_ps(-_cvtsh_ss(loadU16(blk + kQ2_KDAt + 2)));
    scalesFor16(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(packed, nibble)), d), w);
    w.offsets = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(packed, 4)), negDmin);
  }
};

struct Q3_KDecoder {
  static constexpr int kBytes = kQ3_KBytes;
  static void decode(const uint8_t* blk, InOrderWeights& w) {
    // Value + 4 = the two low bits | the hmask bit (bit 4h + s of hmask byte l) << 2.
    const __m512i three = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
    const __m512i hmask = broadcast32(blk);
    for (int k = 0; k < 4; k++) {
      const int h = k / 2, s = 2 * (k % 2);
      const __m512i bytes = broadcast32(blk + kQ3_KQuantsAt + 32 * h);
      const __m512i low = _mm512_and_si512(_mm512_srlv_epi16(bytes, halfShifts(2 * s, 2 * s + 2)), three);
      const __m512i high = _mm512_and_si512(_mm512_slli_epi16(_mm512_srlv_epi16(hmask, halfShifts(4 * h + s, 4 * h + s + 1)), 2), four);
      w.q[k] = _mm512_or_si512(low, high);
    }
    uint8_t biased[16];
    unpackQ3_KScales(blk + kQ3_KScalesAt, biased);
    const __m512i scales = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(biased))),
                                            _mm512_set1_epi32(32));
    const __m512 sc = _mm512_mul_ps(_mm512_cvtepi32_ps(scales), _mm512_set1_ps(_cvtsh_ss(loadU16(blk + kQ3_KDAt))));
    scalesFor16(sc, w);
    w.offsets = _mm512_mul_ps(sc, _mm512_set1_ps(-4.0f));
  }
};

// Q5_K: vector k = quant chunk k: low nibbles with qh bit 2k (first half), high nibbles with bit 2k + 1.
struct Q5_KDecoder {
  static constexpr int kBytes = kQ5_KBytes;
  static void decode(const uint8_t* blk, InOrderWeights& w) {
    const __m512i low = _mm512_set1_epi8(0x0f), one = _mm512_set1_epi8(1);
    const __m512i qh = broadcast32(blk + kQ5_KHighAt);
    for (int k = 0; k < 4; k++) {
      const __m512i bytes = broadcast32(blk + kQ5_KQuantsAt + 32 * k);
      const __m512i nibbles = _mm512_and_si512(_mm512_srlv_epi16(bytes, halfShifts(0, 4)), low);
      const __m512i high = _mm512_and_si512(_mm512_srlv_epi16(qh, halfShifts(2 * k, 2 * k + 1)), one);
      w.q[k] = _mm512_or_si512(nibbles, _mm512_slli_epi16(high, 4));
    }
    uint64_t scales, mins;
    unpackQ4_KScales(blk + kQ5_KScalesAt, &scales, &mins);
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(loadU16(blk)));
    scalesFor32(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(scales)))), d), w);
    const __m128i m = _mm_cvtsi64_si128(int64_t(mins));
    w.offsets = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(m, m))),
                              _mm512_set1_ps(-_cvtsh_ss(loadU16(blk + 2))));
  }
};

// IQ4_XS: vector k = sub-blocks 2k and 2k + 1, whose 32 quant bytes become 128-bit lanes
// (bytes 0-15 low nibbles, bytes 0-15 high nibbles, bytes 16-31 low, bytes 16-31 high).
struct IQ4_XSDecoder {
  static constexpr int kBytes = kIQ4_XSBytes;
  static void decode(const uint8_t* blk, InOrderWeights& w) {
    const __m128i values = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4_NLValues));
    const __m512i table = _mm512_broadcast_i32x4(_mm_xor_si128(values, _mm_set1_epi8(char(0x80))));  // value + 128
    const __m512i low = _mm512_set1_epi8(0x0f);
    const __m512i shifts = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4);
    for (int k = 0; k < 4; k++) {
      const __m512i bytes = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kIQ4_XSQuantsAt + 32 * k)));
      const __m512i spread = _mm512_shuffle_i64x2(bytes, bytes, 0x50);
      w.q[k] = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srlv_epi64(spread, shifts), low));
    }
    const __m512i scales = _mm512_zextsi256_si512(iq4xsScales(blk));  // lanes 8-15 unused
    const __m512 sc = _mm512_mul_ps(_mm512_cvtepi32_ps(scales), _mm512_set1_ps(_cvtsh_ss(loadU16(blk))));
    scalesFor32(sc, w);
    const __m512i pairs = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    w.offsets = _mm512_mul_ps(_mm512_permutexvar_ps(pairs, sc), _mm512_set1_ps(-128.0f));
  }
};

void matmulQ2_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<2, 4>(KQuantKernel<InOrder<Q2_KDecoder>>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}
void matmulQ3_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<2, 4>(KQuantKernel<InOrder<Q3_KDecoder>>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}
void matmulQ5_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<2, 4>(KQuantKernel<InOrder<Q5_KDecoder>>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}
void matmulIQ4_XS(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<2, 4>(KQuantKernel<InOrder<IQ4_XSDecoder>>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}

// ---- packed IQ4_XS: one lane per weight row, 16 rows per vector ----



// 16 weight rows (one group) x RX activation rows from i0. Per sub-block, the 4 quant vectors become 8
// vectors of codebook value + 128 (nibble, then byte shuffle) and each activation row takes 8 vpdpbusd
// against broadcast activation dwords, as packed Q4_0 does, from -128 * sum(q) so that the +128 cancels.
// The 16 rows' 6-bit scales then multiply that sum in integers, and each super-block's total meets the
// float scales once (d of the rows times the activations' d), as llama.cpp's own dot product does: one
// conversion and one multiply-add per super-block instead of two per sub-block.
template <int RX>
void packedIQ4_XSTile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
  const size_t supers = x.cols / kQKSuper;
  const size_t blocks = x.cols / kQKBlock;
  const __m512i low = _mm512_set1_epi8(0x0f);
  const __m128i values = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4_NLValues));
  const __m512i table = _mm512_broadcast_i32x4(_mm_xor_si128(values, _mm_set1_epi8(char(0x80))));  // value + 128
  __m512 acc[RX];
  for (int i = 0; i < RX; i++) acc[i] = _mm512_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kIQ4_XSPackedBytes) {
    prefetchWeightLines(p + kWeightPrefetchBytes, kIQ4_XSPackedBytes);
    const uint8_t* scales = p + kIQ4_XSPackedScalesAt;
    const uint8_t* quants = p + kIQ4_XSPackedQuantsAt;
    // At most 8 sub-blocks x 32 x 127 x 127 x 32 in magnitude: well inside int32.
    __m512i total[RX];
    for (int i = 0; i < RX; i++) total[i] = _mm512_setzero_si512();
    for (int j = 0; j < 8; j++, quants += 16 * kPackRows) {
      const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 16 * j)));
      __m512i w[8];
      for (int k = 0; k < 4; k++) {
        const __m512i v = _mm512_loadu_si512(quants + 64 * k);
        w[k] = _mm512_shuffle_epi8(table, _mm512_and_si512(v, low));
        w[k + 4] = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
      }
      for (int i = 0; i < RX; i++) {
        const int8_t* xq = x.q + (i0 + i) * x.cols + b * kQKSuper + kQKBlock * j;
        // Two dependency chains; the first starts from -128 * sum(q).
        __m512i d0 = _mm512_set1_epi32(-128 * int32_t(x.blockSums[(i0 + i) * blocks + b * 8 + j])), d1 = _mm512_setzero_si512();
        for (int k = 0; k < 8; k += 2) {
          d0 = _mm512_dpbusd_epi32(d0, w[k], broadcastDword(xq + 4 * k));
          d1 = _mm512_dpbusd_epi32(d1, w[k + 1], broadcastDword(xq + 4 * k + 4));
        }
        total[i] = _mm512_add_epi32(total[i], _mm512_mullo_epi32(_mm512_add_epi32(d0, d1), sc));
      }
    }
    const __m512 d = _mm512_loadu_ps(p);
    for (int i = 0; i < RX; i++) {
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(total[i]), _mm512_mul_ps(d, _mm512_set1_ps(x.d[(i0 + i) * blocks + b * 8])), acc[i]);
    }
  }
  for (int i = 0; i < RX; i++) _mm512_storeu_ps(out + (i0 + i) * outStride, acc[i]);
}

// Activation row `row` against packed IQ4_XS in the order of llama.cpp's dot product of that type: per
// super-block, eight integer lanes, lane k taking every sub-block's values 4k..4k+3 times the sub-block's
// scale; then acc_k += d_w * d_x * lane k in one fused multiply-add, and the lanes added as hsum_float_8
// does.
inline void packedIQ4_XSRowInLlamaCppOrder(const KQuantRows& x, size_t row, const uint8_t* group, float* out) {
  const size_t supers = x.cols / kQKSuper, blocks = x.cols / kQKBlock;
  const __m512i low = _mm512_set1_epi8(0x0f);
  const __m128i values = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4_NLValues));
  const __m512i table = _mm512_broadcast_i32x4(_mm_xor_si128(values, _mm_set1_epi8(char(0x80))));  // value + 128
  __m512 acc[8];
  for (int k = 0; k < 8; k++) acc[k] = _mm512_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kIQ4_XSPackedBytes) {
    prefetchWeightLines(p + kWeightPrefetchBytes, kIQ4_XSPackedBytes);
    const uint8_t* scales = p + kIQ4_XSPackedScalesAt;
    const uint8_t* quants = p + kIQ4_XSPackedQuantsAt;
    __m512i lanes[8];
    for (int k = 0; k < 8; k++) lanes[k] = _mm512_setzero_si512();
    for (int j = 0; j < 8; j++, quants += 16 * kPackRows) {
      const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 16 * j)));
      const int8_t* xq = x.q + row * x.cols + b * kQKSuper + kQKBlock * j;
      // Dot k starts from -128 * (activations 4k..4k+3): the weights are value + 128.
      int32_t start[8];
      offsetStarts(xq, 0x80, start);
      for (int k = 0; k < 8; k++) {
        const __m512i v = _mm512_loadu_si512(quants + 64 * (k % 4));
        const __m512i w = _mm512_shuffle_epi8(table, _mm512_and_si512(k < 4 ? v : _mm512_srli_epi16(v, 4), low));
        // |dot| can pass 2^15, so the scale goes on with a 32-bit multiply.
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_set1_epi32(start[k]), w, broadcastDword(xq + 4 * k));
        lanes[k] = _mm512_add_epi32(lanes[k], _mm512_mullo_epi32(dot, sc));
      }
    }
    const __m512 d = _mm512_mul_ps(_mm512_loadu_ps(p), _mm512_set1_ps(x.d[row * blocks + b * 8]));
    for (int k = 0; k < 8; k++) acc[k] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(lanes[k]), acc[k]);
  }
  _mm512_storeu_ps(out, sumLanesInLlamaCppOrder(acc));
}

struct IQ4_XSTiles {
  static constexpr size_t kColumnBytes = kIQ4_XSPackedBytes;
  template <int RX>
  static void tile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
    // llama.cpp does not repack IQ4_XS on x86; from 8 activation rows on it runs its IQ panel gemm
    // (weights of 8k rows, as every packed group is), which sums each super-block as packedIQ4_XSTile does.
    constexpr size_t kLlamaCppPanelRows = 8;
    if (x.rows < kLlamaCppPanelRows && tileRowsInLlamaCppOrder<RX>(x, group, i0, out, outStride, packedIQ4_XSRowInLlamaCppOrder)) return;
    packedIQ4_XSTile<RX>(x, group, i0, out, outStride);
  }
};

// ---- packed Q5_K: packed Q4_K's tile with the fifth bits (avx512_packed_q4k_tile.h) ----

struct Q5_KTiles {
  static constexpr size_t kColumnBytes = kQ5_KPackedBytes;
  template <int RX>
  static void tile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
    // llama.cpp does not repack Q5_K on x86.
    if (tileRowsInLlamaCppOrder<RX>(x, group, i0, out, outStride, packedQ5_KRowInLlamaCppOrder)) return;
    packedQ4_KLayoutTile<RX, true>(x, group, i0, out, outStride);
  }
};

// ---- packed Q3_K: one lane per weight row, 16 rows per vector ----

// 16 weight rows (one group) x RX activation rows from i0. Per run of 32 values (half h, shift s: one
// activation block, two sub-blocks) the 8 weight vectors of value + 4 are assembled from the qs and hmask
// vectors (bits 2s..2s+1 to bits 0-1, bit 4h + s to bit 2), and the 16 rows' d * scale of both sub-blocks
// made once; each activation row then takes 8 vpdpbusd against broadcast activation dwords. The +4 comes
// back out against the sub-block's activation sum: dx * sum((v + 4) q) - 4 * dx * sum(q).
template <int RX>
void packedQ3_KTile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
  const size_t supers = x.cols / kQKSuper;
  const size_t blocks = x.cols / kQKBlock, sums = x.cols / 16;
  const __m512i lowBits = _mm512_set1_epi8(0x03);
  const __m512i thirdBit = _mm512_set1_epi8(0x04);
  __m512 acc[RX];
  for (int i = 0; i < RX; i++) acc[i] = _mm512_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kQ3_KPackedBytes) {
    prefetchWeightLines(p + kWeightPrefetchBytes, kQ3_KPackedBytes);
    const __m512 d = _mm512_loadu_ps(p);
    const uint8_t* scales = p + kQ3_KPackedScalesAt;
    for (int h = 0; h < 2; h++) {
      const uint8_t* qs = p + kQ3_KPackedLowAt + 8 * 64 * h;
      const uint8_t* hmask = p + kQ3_KPackedHighAt;
      for (int s = 0; s < 4; s++) {
        // Bit 4h + s of each hmask byte is the third bit of the value in the same lane: a byte test turns
        // it into a lane mask, and a masked add sets bit 2.
        const int t = 4 * h + s;  // the run: values 32t..32t + 31
        const __m512i bit = _mm512_set1_epi8(char(1 << t));
        __m512i w[8];
        for (int k = 0; k < 8; k++) {
          const __m512i low = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(qs + 64 * k), 2 * s), lowBits);
          w[k] = _mm512_mask_add_epi8(low, _mm512_test_epi8_mask(_mm512_loadu_si512(hmask + 64 * k), bit), low, thirdBit);
        }
        const int g = 8 * h + 2 * s;  // the run's first sub-block
        const __m512 sc0 = _mm512_mul_ps(
            _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 16 * g)))), d);
        const __m512 sc1 = _mm512_mul_ps(
            _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 16 * g + 16)))), d);
        for (int i = 0; i < RX; i++) {
          const int8_t* xq = x.q + (i0 + i) * x.cols + b * kQKSuper + 32 * t;
          // Four dependency chains: two per sub-block.
          __m512i a0 = _mm512_setzero_si512(), a1 = a0, b0 = a0, b1 = a0;
          for (int k = 0; k < 4; k += 2) {
            a0 = _mm512_dpbusd_epi32(a0, w[k], broadcastDword(xq + 4 * k));
            a1 = _mm512_dpbusd_epi32(a1, w[k + 1], broadcastDword(xq + 4 * k + 4));
            b0 = _mm512_dpbusd_epi32(b0, w[k + 4], broadcastDword(xq + 16 + 4 * k));
            b1 = _mm512_dpbusd_epi32(b1, w[k + 5], broadcastDword(xq + 16 + 4 * k + 4));
          }
          const __m512 dx = _mm512_set1_ps(x.d[(i0 + i) * blocks + b * 8 + t]);
          const float* sum = x.s + (i0 + i) * sums + b * 16 + g;
          const __m512 dot0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0, a1)), dx, _mm512_set1_ps(-4.0f * sum[0]));
          const __m512 dot1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(b0, b1)), dx, _mm512_set1_ps(-4.0f * sum[1]));
          acc[i] = _mm512_fmadd_ps(dot0, sc0, acc[i]);
          acc[i] = _mm512_fmadd_ps(dot1, sc1, acc[i]);
        }
      }
    }
  }
  for (int i = 0; i < RX; i++) _mm512_storeu_ps(out + (i0 + i) * outStride, acc[i]);
}

// Activation row `row` against packed Q3_K in the order of llama.cpp's dot product of that type: per
// super-block, eight integer lanes, lane k taking every 32-value run's values 4k..4k+3 (as v - 4, -4..3)
// times their sub-block scale; then acc_k += d_x * d_w * lane k in one fused multiply-add, and the lanes
// added as hsum_float_8 does.
inline void packedQ3_KRowInLlamaCppOrder(const KQuantRows& x, size_t row, const uint8_t* group, float* out) {
  const size_t supers = x.cols / kQKSuper, blocks = x.cols / kQKBlock;
  const __m512i lowBits = _mm512_set1_epi8(0x03);
  const __m512i thirdBit = _mm512_set1_epi8(0x04);
  __m512 acc[8];
  for (int k = 0; k < 8; k++) acc[k] = _mm512_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kQ3_KPackedBytes) {
    prefetchWeightLines(p + kWeightPrefetchBytes, kQ3_KPackedBytes);
    const uint8_t* scales = p + kQ3_KPackedScalesAt;
    __m512i lanes[8];
    for (int k = 0; k < 8; k++) lanes[k] = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) {
      const uint8_t* qs = p + kQ3_KPackedLowAt + 8 * 64 * h;
      const uint8_t* hmask = p + kQ3_KPackedHighAt;
      for (int s = 0; s < 4; s++) {
        const int t = 4 * h + s;  // the run: values 32t..32t + 31, sub-blocks 2t and 2t + 1
        const __m512i bit = _mm512_set1_epi8(char(1 << t));
        const int8_t* xq = x.q + row * x.cols + b * kQKSuper + 32 * t;
        // Dot k starts from -4 * (activations 4k..4k+3): the weights are v + 4.
        int32_t start[8];
        offsetStarts(xq, 4, start);
        const __m512i scaleLo = rowScalesLowHalves(scales, 2 * t), scaleHi = rowScalesLowHalves(scales, 2 * t + 1);
        for (int k = 0; k < 8; k++) {
          const __m512i low = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(qs + 64 * k), 2 * s), lowBits);
          const __m512i w = _mm512_mask_add_epi8(low, _mm512_test_epi8_mask(_mm512_loadu_si512(hmask + 64 * k), bit), low, thirdBit);
          const __m512i dot = _mm512_dpbusd_epi32(_mm512_set1_epi32(start[k]), w, broadcastDword(xq + 4 * k));
          lanes[k] = _mm512_dpwssd_epi32(lanes[k], dot, k < 4 ? scaleLo : scaleHi);
        }
      }
    }
    const __m512 d = _mm512_mul_ps(_mm512_loadu_ps(p), _mm512_set1_ps(x.d[row * blocks + b * 8]));
    for (int k = 0; k < 8; k++) acc[k] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(lanes[k]), acc[k]);
  }
  _mm512_storeu_ps(out, sumLanesInLlamaCppOrder(acc));
}

struct Q3_KTiles {
  static constexpr size_t kColumnBytes = kQ3_KPackedBytes;
  template <int RX>
  static void tile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
    // llama.cpp does not repack Q3_K on x86.
    if (tileRowsInLlamaCppOrder<RX>(x, group, i0, out, outStride, packedQ3_KRowInLlamaCppOrder)) return;
    packedQ3_KTile<RX>(x, group, i0, out, outStride);
  }
};

// ---- packed Q2_K: one lane per weight row, 16 rows per vector ----

// How packedQ2_KTile adds up a row. kFast: as packed Q4_K's tile (below). The other two as llama.cpp's
// repacked Q2_K kernels on AVX-512 (it repacks Q2_K there), which keep the mins' products in an f32 sum of
// their own, subtracted at the end: kGemv (its decode) adds each super-block's integer sums to the two
// f32 sums, kGemm (its prefill, for all but the last n % 4 of n > 3 rows) each 128-value half's.
enum class Q2_KOrder { kFast, kGemv, kGemm };

// 16 weight rows (one group) x RX activation rows from i0. kFast sums as packed Q4_K's: within a
// super-block in integers (each sub-block's dot times its 4-bit scale), then one float multiply-add per
// super-block; the mins go first, each activation row's sum over the 16 sub-blocks of min x (the
// sub-block's scaled activation sum). Per run of 32 values (half h, shift s) the 8 quant vectors (bits
// 2s..2s+1 of the qs vectors) are made once and each activation row takes 8 vpdpbusd against broadcast
// activation dwords. In llama.cpp's orders the mins are integers against the activation sums of 16
// values (KQuantRows::halfBlockSums), meeting dmin * d_x in their own f32 sum.
template <int RX>
void packedQ2_KTile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride, Q2_KOrder order = Q2_KOrder::kFast) {
  const size_t supers = x.cols / kQKSuper;
  const size_t blocks = x.cols / kQKBlock, sums = x.cols / 16;
  const __m512i lowBits = _mm512_set1_epi8(0x03);
  const __m512i nibble = _mm512_set1_epi32(0x0f);
  const bool minsApart = order != Q2_KOrder::kFast;
  // kGemm: the sums go to the f32 sums after each half (4 runs of 32 values), the others after all 8.
  const int runsPerSum = order == Q2_KOrder::kGemm ? 4 : 8;
  __m512 acc[RX], accMins[RX];
  for (int i = 0; i < RX; i++) acc[i] = accMins[i] = _mm512_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kQ2_KPackedBytes) {
    prefetchWeightLines(p + kWeightPrefetchBytes, kQ2_KPackedBytes);
    const uint8_t* scales = p + kQ2_KPackedScalesAt;
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * kPackRows)));
    if (!minsApart) {
      __m512 minSums[RX];
      for (int i = 0; i < RX; i++) minSums[i] = _mm512_setzero_ps();
      for (int j = 0; j < 16; j++) {
        const __m512i packed = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 16 * j)));
        const __m512 m = _mm512_cvtepi32_ps(_mm512_srli_epi32(packed, 4));
        for (int i = 0; i < RX; i++) minSums[i] = _mm512_fmadd_ps(m, _mm512_set1_ps(x.s[(i0 + i) * sums + b * 16 + j]), minSums[i]);
      }
      for (int i = 0; i < RX; i++) acc[i] = _mm512_fnmadd_ps(dmin, minSums[i], acc[i]);
    }
    // At most 16 sub-blocks x 16 x 3 x 127 x 15 in magnitude: well inside int32.
    __m512i total[RX], mins[RX];
    for (int i = 0; i < RX; i++) total[i] = mins[i] = _mm512_setzero_si512();
    for (int t = 0; t < 8; t++) {
      const int h = t / 4, s = t % 4;
      const uint8_t* qs = p + kQ2_KPackedQuantsAt + 8 * 64 * h;
      __m512i w[8];
      for (int k = 0; k < 8; k++) w[k] = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(qs + 64 * k), 2 * s), lowBits);
      const __m512i packed0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 32 * t)));
      const __m512i packed1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 32 * t + 16)));
      const __m512i sc0 = _mm512_and_si512(packed0, nibble), sc1 = _mm512_and_si512(packed1, nibble);
      // The 4-bit mins of sub-blocks 2t and 2t + 1 as an int16 pair, against the pair of activation sums.
      const __m512i minPair = _mm512_or_si512(_mm512_srli_epi32(packed0, 4), _mm512_slli_epi32(_mm512_srli_epi32(packed1, 4), 16));
      for (int i = 0; i < RX; i++) {
        const int8_t* xq = x.q + (i0 + i) * x.cols + b * kQKSuper + 32 * t;
        // One dependency chain per sub-block (vectors 0-3: sub-block 2t, 4-7: 2t + 1).
        __m512i a = _mm512_setzero_si512(), c = a;
        for (int k = 0; k < 4; k++) {
          a = _mm512_dpbusd_epi32(a, w[k], broadcastDword(xq + 4 * k));
          c = _mm512_dpbusd_epi32(c, w[k + 4], broadcastDword(xq + 16 + 4 * k));
        }
        total[i] = _mm512_add_epi32(total[i], _mm512_add_epi32(_mm512_mullo_epi32(a, sc0), _mm512_mullo_epi32(c, sc1)));
        if (minsApart) {
          const int16_t* sums16 = x.halfBlockSums + (i0 + i) * sums + b * 16 + 2 * t;
          mins[i] = _mm512_dpwssd_epi32(mins[i], minPair, broadcastDword(reinterpret_cast<const int8_t*>(sums16)));
        }
      }
      if ((t + 1) % runsPerSum != 0) continue;
      for (int i = 0; i < RX; i++) {
        const __m512 dx = _mm512_set1_ps(x.d[(i0 + i) * blocks + b * 8]);
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(total[i]), _mm512_mul_ps(d, dx), acc[i]);
        if (minsApart) accMins[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mins[i]), _mm512_mul_ps(dmin, dx), accMins[i]);
        total[i] = mins[i] = _mm512_setzero_si512();
      }
    }
  }
  for (int i = 0; i < RX; i++) _mm512_storeu_ps(out + (i0 + i) * outStride, minsApart ? _mm512_sub_ps(acc[i], accMins[i]) : acc[i]);
}

struct Q2_KTiles {
  static constexpr size_t kColumnBytes = kQ2_KPackedBytes;
  template <int RX>
  static void tile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
    if (x.halfBlockSums == nullptr || (x.rows != 1 && !prefillInLlamaCppOrder())) return packedQ2_KTile<RX>(x, group, i0, out, outStride);
    // llama.cpp's order, row by row: its repacked gemm or gemv, as llamaCppGemmRows says.
    const size_t gemmRows = llamaCppGemmRows(x.rows);
    for (size_t i = i0; i < i0 + RX; i++) packedQ2_KTile<1>(x, group, i, out, outStride, i < gemmRows ? Q2_KOrder::kGemm : Q2_KOrder::kGemv);
  }
};

// The group loop of every packed format (packed_group_loop.h): tiles of 8 activation rows, as in
// avx512_kernels.cc.
template <class Tiles>
void matmulPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  packedGroups<Tiles, 8>(x, w, x.cols / kQKSuper * Tiles::kColumnBytes, range);
}

void matmulIQ4_XSPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulPacked<IQ4_XSTiles>(x, w, range); }
void matmulQ5_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulPacked<Q5_KTiles>(x, w, range); }
void matmulQ3_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulPacked<Q3_KTiles>(x, w, range); }
void matmulQ2_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulPacked<Q2_KTiles>(x, w, range); }

}  // namespace

const SuperBlockKernels* avx512SuperBlockKernels() {
  static const SuperBlockKernels kKernels{matmulQ2_K, matmulQ3_K, matmulQ5_K, matmulIQ4_XS, matmulIQ4_XSPacked, matmulQ5_KPacked, matmulQ3_KPacked,
                                         matmulQ2_KPacked};
  return &kKernels;
}

}  // namespace vserve
