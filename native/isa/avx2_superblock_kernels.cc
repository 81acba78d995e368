// AVX2 Q2_K / Q3_K / Q5_K / IQ4_XS matmuls on KQuantRows activations. Each type decodes a super-block
// into the KQuantWeights form of avx2_kquant_rows.h (vector v = values 32v..32v+31, int16 scale lanes,
// float offsets against the 16 activation sums) and shares the Q4_K / Q6_K dot and tiling:
//   Q2_K: quants 0..3, scale = low nibble, offset -dmin * min (high nibble) per 16 values.
//   Q3_K: quants stored unsigned as value + 4 (0..7), signed 6-bit scales, offset -4 * d * scale.
//   Q5_K: Q4_K's scales and mins with 5-bit quants (0..31).
//   IQ4_XS: signed table values (sign trick in the dot), signed 6-bit scales per 32, no offsets.
// Their kernels on weights packed 16 rows at a time (Q3_K, Q5_K, IQ4_XS) are avx2_packed_kernels.h's, next to
// the other packed types.
#include <immintrin.h>

#include <cstring>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "../superblock_unpack.h"
#include "avx2_kquant_rows.h"
#include "iq4_xs_scales.h"
#include "kquant_blocks.h"
#include "tile_grid.h"

namespace vserve {
namespace {

inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Scale lanes for 16 sub-blocks of 16 given as int16 words: vector v takes sub-blocks 2v and 2v + 1.
inline void spreadScales16(__m256i words, KQuantWeights& w) {
  const __m256i first = _mm256_permute2x128_si256(words, words, 0x00);   // scales 0-7 in both lanes
  const __m256i second = _mm256_permute2x128_si256(words, words, 0x11);  // scales 8-15
  for (int v = 0; v < 4; v++) {
    w.scale[v] = spreadWords(first, 2 * v, 2 * v + 1);
    w.scale[v + 4] = spreadWords(second, 2 * v, 2 * v + 1);
  }
}

// offsets = factor * the 16 int8 values (signed or unsigned as given by `Convert`).
template <__m256i (*Convert)(__m128i)>
inline void offsetsFrom(__m128i values, __m256 factor, KQuantWeights& w) {
  w.offsets[0] = _mm256_mul_ps(_mm256_cvtepi32_ps(Convert(values)), factor);
  w.offsets[1] = _mm256_mul_ps(_mm256_cvtepi32_ps(Convert(_mm_srli_si128(values, 8))), factor);
}
inline __m256i widenU8(__m128i v) { return _mm256_cvtepu8_epi32(v); }
inline __m256i widenI8(__m128i v) { return _mm256_cvtepi8_epi32(v); }

struct Q2_K {
  static constexpr int kBytes = kQ2_KBytes;
  static void decode(const uint8_t* blk, KQuantWeights& w) {
    const __m256i three = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
      const __m256i bytes = load256(blk + kQ2_KQuantsAt + 32 * h);
      for (int s = 0; s < 4; s++) w.q[4 * h + s] = _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * s), three);
    }
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk));
    const __m128i nibble = _mm_set1_epi8(0x0f);
    spreadScales16(_mm256_cvtepu8_epi16(_mm_and_si128(packed, nibble)), w);
    const __m128i mins = _mm_and_si128(_mm_srli_epi16(packed, 4), nibble);
    w.d = _mm256_set1_ps(_cvtsh_ss(loadU16(blk + kQ2_KDAt)));
    offsetsFrom<widenU8>(mins, _mm256_set1_ps(-_cvtsh_ss(loadU16(blk + kQ2_KDAt + 2))), w);
  }
};

struct Q3_K {
  static constexpr int kBytes = kQ3_KBytes;
  static void decode(const uint8_t* blk, KQuantWeights& w) {
    // Value + 4 = the two low bits | the hmask bit (bit 4h + s of hmask byte l) << 2.
    const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    const __m256i hmask = load256(blk);
    for (int h = 0; h < 2; h++) {
      const __m256i bytes = load256(blk + kQ3_KQuantsAt + 32 * h);
      for (int s = 0; s < 4; s++) {
        const __m256i low = _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * s), three);
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hmask, 4 * h + s), one);
        w.q[4 * h + s] = _mm256_or_si256(low, _mm256_slli_epi16(high, 2));
      }
    }
    uint8_t biased[16];
    unpackQ3_KScales(blk + kQ3_KScalesAt, biased);
    const __m128i scales = _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(biased)), _mm_set1_epi8(32));
    spreadScales16(_mm256_cvtepi8_epi16(scales), w);
    const float d = _cvtsh_ss(loadU16(blk + kQ3_KDAt));
    w.d = _mm256_set1_ps(d);
    offsetsFrom<widenI8>(scales, _mm256_set1_ps(-4.0f * d), w);
  }
};

struct Q5_K {
  static constexpr int kBytes = kQ5_KBytes;
  static void decode(const uint8_t* blk, KQuantWeights& w) {
    w.d = _mm256_set1_ps(_cvtsh_ss(loadU16(blk)));
    uint64_t scales, mins;
    unpackQ4_KScales(blk + kQ5_KScalesAt, &scales, &mins);
    const __m256i scaleWords = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(scales))));
    for (int j = 0; j < 8; j++) w.scale[j] = spreadWords(scaleWords, j, j);
    const __m128i m = _mm_cvtsi64_si128(int64_t(mins));
    offsetsFrom<widenU8>(_mm_unpacklo_epi8(m, m), _mm256_set1_ps(-_cvtsh_ss(loadU16(blk + 2))), w);
    // The fifth bit of values 64p + l and 64p + 32 + l: bits 2p and 2p + 1 of qh byte l.
    const __m256i low = _mm256_set1_epi8(0x0f), bit4 = _mm256_set1_epi8(0x10);
    const __m256i qh = load256(blk + kQ5_KHighAt);
    for (int p = 0; p < 4; p++) {
      const __m256i bytes = load256(blk + kQ5_KQuantsAt + 32 * p);
      const __m256i high0 = 2 * p <= 4 ? _mm256_slli_epi16(qh, 4 - 2 * p) : _mm256_srli_epi16(qh, 2 * p - 4);
      const __m256i high1 = 2 * p + 1 <= 4 ? _mm256_slli_epi16(qh, 3 - 2 * p) : _mm256_srli_epi16(qh, 2 * p - 3);
      w.q[2 * p] = _mm256_or_si256(_mm256_and_si256(bytes, low), _mm256_and_si256(high0, bit4));
      w.q[2 * p + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bytes, 4), low), _mm256_and_si256(high1, bit4));
    }
  }
};

struct IQ4_XS {
  static constexpr int kBytes = kIQ4_XSBytes;
  static void decode(const uint8_t* blk, KQuantWeights& w) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4_NLValues)));
    const __m256i low = _mm256_set1_epi8(0x0f);
    // Sub-blocks 2k and 2k + 1 are 32 quant bytes: low nibbles give values 0-15 of each, high nibbles 16-31.
    for (int k = 0; k < 4; k++) {
      const __m256i bytes = load256(blk + kIQ4_XSQuantsAt + 32 * k);
      const __m256i first = _mm256_shuffle_epi8(table, _mm256_and_si256(bytes, low));
      const __m256i second = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low));
      w.q[2 * k] = _mm256_permute2x128_si256(first, second, 0x20);
      w.q[2 * k + 1] = _mm256_permute2x128_si256(first, second, 0x31);
    }
    const __m256i scales = iq4xsScales(blk);
    const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(scales), _mm256_extracti128_si256(scales, 1));
    const __m256i scaleWords = _mm256_broadcastsi128_si256(words);
    for (int j = 0; j < 8; j++) w.scale[j] = spreadWords(scaleWords, j, j);
    w.d = _mm256_set1_ps(_cvtsh_ss(loadU16(blk)));
    w.offsets[0] = w.offsets[1] = _mm256_setzero_ps();
  }
};

// One weight row at a time, as for Q4_K: a decoded super-block alone fills the 16 registers.
void matmulQ2_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<1, 4>(KQuantKernel<Q2_K>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}
void matmulQ3_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<1, 4>(KQuantKernel<Q3_K>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}
void matmulQ5_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<1, 4>(KQuantKernel<Q5_K>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}
void matmulIQ4_XS(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<1, 4>(KQuantKernel<IQ4_XS, true>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}

}  // namespace

const SuperBlockKernels* avx2SuperBlockKernels() {
  static const SuperBlockKernels kKernels{matmulQ2_K, matmulQ3_K, matmulQ5_K, matmulIQ4_XS, avx2MatmulIQ4_XSPacked, avx2MatmulQ5_KPacked,
                                         avx2MatmulQ3_KPacked, avx2MatmulQ2_KPacked};
  return &kKernels;
}

}  // namespace vserve
