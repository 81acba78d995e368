// AVX2 attention tile kernels that read the KV formats in place (KVTileKernels, kv_format.h), built
// into the avx2 static library with its flags (binding.gyp).
//
// f16: the f32 tile loops (avx2_attention_tiles.h) on rows converted 8 values at a time by vcvtph2ps.
//
// q8_0 / q4_0 keys: integer dots with the query's q8_0 blocks (QueryBlocks), 8 positions at a time. A
// block's quants are transposed as 4-byte groups, so vector j holds dims 4j..4j+3 of all 8 positions;
// per head and j, vpmaddubsw with the query's 4 bytes broadcast gives each position's two pair sums
// and vpmaddwd adds them into its lane: no horizontal sums, and the transpose is shared by the heads.
// vpmaddubsw multiplies unsigned by signed bytes: q8_0 moves the key's sign onto the query (the sign
// trick), q4_0 nibbles are 0..15 already and the 8 they are offset by comes out once per block as
// 8 * sum(q). Each block's integer dot is scaled once per head by key scale x query scale.
//
// q8_0 / q4_0 values: the f32 tile loop (accumulateHeads8) on rows whose blocks are widened to floats
// 8 values at a time, with the weights times each row's block scale (forValueBlocks: one multiply per
// head and position, not one per value).
#include <immintrin.h>

#include <algorithm>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "../kv_format.h"
#include "avx2_attention_tiles.h"
#include "quant_tile_loops.h"
#include "tile_helpers.h"

namespace vserve {
namespace {

// ---- f16 ----

void scoreF16(const float* q, const QueryBlocks&, size_t heads, const uint8_t* const* keys, size_t count, size_t d,
              float scale, float* scores, size_t stride, const NextBytes& next) {
  scoreRows<F16Rows>(q, heads, keys, count, d, scale, scores, stride, next.rows, next.count);
}

void accumulateF16(float* out, size_t heads, const uint8_t* const* values, const float* weights, size_t stride, size_t count,
                   size_t d, const NextBytes& next) {
  accumulateRows<F16Rows>(out, heads, values, weights, stride, count, d, next.rows, next.count);
}

// ---- q8_0 / q4_0 ----

inline __m128i load64(const uint8_t* p) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); }
inline __m128i load128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Transposes 4x4 dwords within each 128-bit lane: afterwards a_j's lane holds dword j of a0..a3's.
inline void transposeDwords4(__m256i& a0, __m256i& a1, __m256i& a2, __m256i& a3) {
  const __m256i u0 = _mm256_unpacklo_epi32(a0, a1), u1 = _mm256_unpackhi_epi32(a0, a1);
  const __m256i u2 = _mm256_unpacklo_epi32(a2, a3), u3 = _mm256_unpackhi_epi32(a2, a3);
  a0 = _mm256_unpacklo_epi64(u0, u2);
  a1 = _mm256_unpackhi_epi64(u0, u2);
  a2 = _mm256_unpacklo_epi64(u1, u3);
  a3 = _mm256_unpackhi_epi64(u1, u3);
}

// The block scales (f16 at rows[p] + at) of n <= 8 rows as floats; lanes from n on are zero.
inline __m256 blockScales8(const uint8_t* const* rows, size_t n, size_t at) {
  alignas(16) uint16_t bits[8] = {};
  for (size_t p = 0; p < n; p++) bits[p] = loadU16(rows[p] + at);
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(bits)));
}

// A format's blocks as the kernels read them. keyGroups: 8 rows' blocks (at rows[p] + at) as 4-byte
// groups, group j = dims 4j..4j+3, lane p = row p. blockDot: per lane, the block's integer dot with
// the query's 32 bytes, less kKeyOffset * sum(q). values8: dims 8k..8k+7 of a block (quants, unscaled).
struct Q8_0Format {
  static constexpr size_t kBytes = kQ8_0Bytes;
  static constexpr int kKeyOffset = 0;
  struct Keys {
    __m256i raw[8];
    __m256i magnitude[8];
  };
  static void keyGroups(const uint8_t* const* rows, size_t at, Keys& k) {
    __m256 r[8];
    for (int p = 0; p < 8; p++) r[p] = _mm256_castsi256_ps(load256(rows[p] + at + 2));
    transpose8(r);
    for (int j = 0; j < 8; j++) {
      k.raw[j] = _mm256_castps_si256(r[j]);
      k.magnitude[j] = _mm256_abs_epi8(k.raw[j]);
    }
  }
  // |k| * (q with k's sign) = k * q, and a pair's sum stays within int16 (2 * 128 * 127).
  static __m256i blockDot(const Keys& k, const int8_t* q) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i sum = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {
      const __m256i signedQ = _mm256_sign_epi8(_mm256_set1_epi32(loadI32(q + 4 * j)), k.raw[j]);
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(k.magnitude[j], signedQ), ones));
    }
    return sum;
  }
  static __m256 values8(const uint8_t* blk, size_t k) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load64(blk + 2 + 8 * k)));
  }
};

struct Q4_0Format {
  static constexpr size_t kBytes = kQ4_0Bytes;
  static constexpr int kKeyOffset = 8;
  struct Keys {
    __m256i nibbles[8];
  };
  static void keyGroups(const uint8_t* const* rows, size_t at, Keys& k) {
    // y[i] holds rows i and 4 + i, so after the in-lane transposes the lanes hold rows 0..3 and 4..7.
    __m256i y[4];
    for (int i = 0; i < 4; i++) {
      y[i] = _mm256_inserti128_si256(_mm256_castsi128_si256(load128(rows[i] + at + 2)), load128(rows[4 + i] + at + 2), 1);
    }
    transposeDwords4(y[0], y[1], y[2], y[3]);
    // Byte j holds value j (low nibble) and value 16 + j (high nibble).
    const __m256i low = _mm256_set1_epi8(0x0f);
    for (int j = 0; j < 4; j++) {
      k.nibbles[j] = _mm256_and_si256(y[j], low);
      k.nibbles[4 + j] = _mm256_and_si256(_mm256_srli_epi16(y[j], 4), low);
    }
  }
  // Nibble pairs sum to at most 2 * 15 * 127, so all 8 groups add up within int16 before widening.
  static __m256i blockDot(const Keys& k, const int8_t* q) {
    __m256i pairs = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {
      pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(k.nibbles[j], _mm256_set1_epi32(loadI32(q + 4 * j))));
    }
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
  }
  static __m256 values8(const uint8_t* blk, size_t k) {
    __m128i bytes = load64(blk + 2 + 8 * (k % 2));
    if (k >= 2) bytes = _mm_srli_epi16(bytes, 4);
    const __m128i q = _mm_sub_epi8(_mm_and_si128(bytes, _mm_set1_epi8(0x0f)), _mm_set1_epi8(8));
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
  }
};

// A format's value rows as avx2_attention_tiles.h reads rows (whole blocks: i is a multiple of 8).
template <class F>
struct QuantRows {
  using Row = const uint8_t*;
  static __m256 load(Row r, size_t i) { return F::values8(r + i / kQKBlock * F::kBytes, i % kQKBlock / 8); }
  static void prefetch(Row r, size_t i, size_t) {
    if (i % kQKBlock == 0) prefetchBlock(r + i / kQKBlock * F::kBytes, F::kBytes);
  }
};

// HC heads' scores against 8 rows (n of them real: the rest repeat a row, and are not stored).
template <int HC, class F>
void quantScoreHeads8(const QueryBlocks& qb, size_t d, const uint8_t* const* keys, size_t n, float scale, float* scores,
                      size_t stride, const uint8_t* const* next, size_t nextCount) {
  const size_t blocks = d / kQKBlock;
  __m256 acc[HC];
  for (int h = 0; h < HC; h++) acc[h] = _mm256_setzero_ps();
  for (size_t b = 0; b < blocks; b++) {
    const size_t at = b * F::kBytes;
    for (size_t p = 0; p < nextCount; p++) prefetchBlock(next[p] + at, F::kBytes);
    typename F::Keys k;
    F::keyGroups(keys, at, k);
    const __m256 keyScales = blockScales8(keys, n, at);
    for (int h = 0; h < HC; h++) {
      const size_t hb = h * blocks + b;
      __m256i dots = F::blockDot(k, qb.q + h * d + b * kQKBlock);
      if constexpr (F::kKeyOffset != 0) dots = _mm256_sub_epi32(dots, _mm256_set1_epi32(F::kKeyOffset * qb.sums[hb]));
      const __m256 factor = _mm256_mul_ps(keyScales, _mm256_set1_ps(qb.s[hb] * scale));
      acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), factor, acc[h]);
    }
  }
  for (int h = 0; h < HC; h++) {
    if (n == 8) {
      _mm256_storeu_ps(scores + h * stride, acc[h]);
    } else {
      alignas(32) float all[8];
      _mm256_store_ps(all, acc[h]);
      std::copy_n(all, n, scores + h * stride);
    }
  }
}

template <class F>
void scoreQuant(const float*, const QueryBlocks& qb, size_t heads, const uint8_t* const* keys, size_t count, size_t d,
                float scale, float* scores, size_t stride, const NextBytes& next) {
  forKeyGroups<8, 8>(qb, heads, d, keys, count, scores, stride, next,
                     [&](auto hc, const QueryBlocks& chunk, const uint8_t* const* rows, size_t n, float* at,
                         const uint8_t* const* nextRows, size_t nextCount) {
                       quantScoreHeads8<decltype(hc)::value, F>(chunk, d, rows, n, scale, at, stride, nextRows, nextCount);
                     });
}

template <class F>
void accumulateQuant(float* out, size_t heads, const uint8_t* const* values, const float* weights, size_t stride, size_t count,
                     size_t d, const NextBytes& next) {
  const auto scales = [](const uint8_t* const* rows, size_t n, size_t at, float* out) {
    for (size_t p = 0; p < n; p += 8) _mm256_store_ps(out + p, blockScales8(rows + p, std::min<size_t>(8, n - p), at));
  };
  forValueBlocks<8>(heads, values, weights, stride, count, d / kQKBlock, F::kBytes, next, scales,
                    [&](auto hc, size_t h0, size_t b, const uint8_t* const* rows, const float* scaled, size_t n,
                        const uint8_t* const* nextRows, size_t nextCount) {
                      for (size_t i = b * kQKBlock; i < (b + 1) * kQKBlock; i += 8) {
                        accumulateHeads8<decltype(hc)::value, QuantRows<F>>(out + h0 * d, d, i, rows, scaled, kValueChunk, n,
                                                                            nextRows, nextCount);
                      }
                    });
}

// f32 rows use the kernel set's own scoreTile / accumulateTile.
const KVTileKernels kTiles[kKVFormatCount] = {
    {nullptr, nullptr},
    {scoreF16, accumulateF16},
    {scoreQuant<Q8_0Format>, accumulateQuant<Q8_0Format>},
    {scoreQuant<Q4_0Format>, accumulateQuant<Q4_0Format>},
};

}  // namespace

const KVTileKernels* avx2KVTiles() { return kTiles; }

}  // namespace vserve
