// AVX-512 attention tile kernels that read the KV formats in place (KVTileKernels, kv_format.h), built
// into the avx512 static library with its flags (binding.gyp).
//
// f16: the f32 tile loops (avx512_attention_tiles.h) on rows converted 16 values at a time by vcvtph2ps.
//
// q8_0 / q4_0 keys: integer dots with the query's q8_0 blocks (QueryBlocks), 16 positions at a time.
// A block's quants are transposed as 4-byte groups, so vector j holds dims 4j..4j+3 of all 16 positions
// and one vpdpbusd per (head, j) adds a 4-dim partial dot into each position's lane, with the query's 4
// bytes broadcast: no horizontal sums, and the transpose is shared by the group's heads. vpdpbusd takes
// the key as its unsigned operand: q8_0 quants are offset by 128 (xor 0x80), q4_0 nibbles are 0..15
// already; the offset times the query block's sum is taken out by starting the sum at -offset * sum(q).
// Each block's integer dot is scaled once per head by key scale x query scale.
//
// q8_0 / q4_0 values: the f32 tile loop (accumulateHeads32) on rows whose blocks are widened to floats
// 16 values at a time, with the weights times each row's block scale (forValueBlocks: one multiply per
// head and position, not one per value).
#include <immintrin.h>

#include <algorithm>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "../kv_format.h"
#include "avx512_attention_tiles.h"
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

inline __m128i load128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Transposes 4x4 dwords within each 128-bit lane: afterwards a_j's lane holds dword j of a0..a3's.
inline void transposeDwords4(__m512i& a0, __m512i& a1, __m512i& a2, __m512i& a3) {
  const __m512i u0 = _mm512_unpacklo_epi32(a0, a1), u1 = _mm512_unpackhi_epi32(a0, a1);
  const __m512i u2 = _mm512_unpacklo_epi32(a2, a3), u3 = _mm512_unpackhi_epi32(a2, a3);
  a0 = _mm512_unpacklo_epi64(u0, u2);
  a1 = _mm512_unpackhi_epi64(u0, u2);
  a2 = _mm512_unpacklo_epi64(u1, u3);
  a3 = _mm512_unpackhi_epi64(u1, u3);
}

// The block scales (f16 at rows[p] + at) of n <= 16 rows as floats; lanes from n on are zero.
inline __m512 blockScales16(const uint8_t* const* rows, size_t n, size_t at) {
  alignas(32) uint16_t bits[16] = {};
  for (size_t p = 0; p < n; p++) bits[p] = loadU16(rows[p] + at);
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(bits)));
}

// A format's blocks as the kernels read them. keyGroups: the quants of 16 rows' blocks (at rows[p] + at)
// as unsigned bytes u = k + kKeyOffset, t[j] lane p = dims 4j..4j+3 of row p. half: values 16k..16k+15
// of a block (quants, unscaled) as floats.
struct Q8_0Format {
  static constexpr size_t kBytes = kQ8_0Bytes;
  static constexpr int kKeyOffset = 128;
  static void keyGroups(const uint8_t* const* rows, size_t at, __m512i (&t)[8]) {
    // z[m] holds rows (m, m + 4) for m < 4 and (m + 4, m + 8) after, a row per 256-bit half. The 4x4
    // transposes within lanes, then picking lanes, leave the positions in order 0..15.
    __m512i z[8];
    for (int m = 0; m < 8; m++) {
      const int r = m < 4 ? m : m + 4;
      z[m] = _mm512_inserti64x4(_mm512_castsi256_si512(load256(rows[r] + at + 2)), load256(rows[r + 4] + at + 2), 1);
    }
    transposeDwords4(z[0], z[1], z[2], z[3]);
    transposeDwords4(z[4], z[5], z[6], z[7]);
    const __m512i offset = _mm512_set1_epi8(char(0x80));
    for (int j = 0; j < 4; j++) {
      t[j] = _mm512_xor_si512(_mm512_shuffle_i32x4(z[j], z[4 + j], 0x88), offset);      // dword j: lanes 0, 2 of each
      t[4 + j] = _mm512_xor_si512(_mm512_shuffle_i32x4(z[j], z[4 + j], 0xDD), offset);  // dword 4 + j: lanes 1, 3
    }
  }
  static __m512 half(const uint8_t* blk, size_t k) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(load128(blk + 2 + 16 * k))); }
};

struct Q4_0Format {
  static constexpr size_t kBytes = kQ4_0Bytes;
  static constexpr int kKeyOffset = 8;
  static void keyGroups(const uint8_t* const* rows, size_t at, __m512i (&t)[8]) {
    // v[i]'s lane k is row 4k + i, so after the in-lane transposes lane k holds rows 4k..4k+3 in order.
    __m512i v[4];
    for (int i = 0; i < 4; i++) {
      v[i] = _mm512_castsi128_si512(load128(rows[i] + at + 2));
      v[i] = _mm512_inserti32x4(v[i], load128(rows[4 + i] + at + 2), 1);
      v[i] = _mm512_inserti32x4(v[i], load128(rows[8 + i] + at + 2), 2);
      v[i] = _mm512_inserti32x4(v[i], load128(rows[12 + i] + at + 2), 3);
    }
    transposeDwords4(v[0], v[1], v[2], v[3]);
    // Byte j holds value j (low nibble) and value 16 + j (high nibble).
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (int j = 0; j < 4; j++) {
      t[j] = _mm512_and_si512(v[j], low);
      t[4 + j] = _mm512_and_si512(_mm512_srli_epi16(v[j], 4), low);
    }
  }
  static __m512 half(const uint8_t* blk, size_t k) {
    __m128i bytes = load128(blk + 2);
    if (k != 0) bytes = _mm_srli_epi16(bytes, 4);
    const __m128i q = _mm_sub_epi8(_mm_and_si128(bytes, _mm_set1_epi8(0x0f)), _mm_set1_epi8(8));
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
  }
};

// A format's value rows as avx512_attention_tiles.h reads rows (whole blocks: i is a multiple of 16).
template <class F>
struct QuantRows {
  using Row = const uint8_t*;
  static __m512 load(Row r, size_t i) { return F::half(r + i / kQKBlock * F::kBytes, i % kQKBlock / 16); }
  static __m512 loadMasked(Row r, size_t i, __mmask16 m) { return m != 0 ? load(r, i) : _mm512_setzero_ps(); }
  static void prefetch(Row r, size_t i, size_t) {
    if (i % kQKBlock == 0) prefetchBlock(r + i / kQKBlock * F::kBytes, F::kBytes);
  }
};

// HC heads' scores against 16 rows (n of them real: the rest repeat a row, and are not stored).
template <int HC, class F>
void quantScoreHeads16(const QueryBlocks& qb, size_t d, const uint8_t* const* keys, size_t n, float scale, float* scores,
                       size_t stride, const uint8_t* const* next, size_t nextCount) {
  const size_t blocks = d / kQKBlock;
  __m512 acc[HC];
#pragma GCC unroll 8
  for (int h = 0; h < HC; h++) acc[h] = _mm512_setzero_ps();
  for (size_t b = 0; b < blocks; b++) {
    const size_t at = b * F::kBytes;
    for (size_t p = 0; p < nextCount; p++) prefetchBlock(next[p] + at, F::kBytes);
    __m512i t[8];
    F::keyGroups(keys, at, t);
    const __m512 keyScales = blockScales16(keys, n, at);
#pragma GCC unroll 8
    for (int h = 0; h < HC; h++) {
      const int8_t* qh = qb.q + h * d + b * kQKBlock;
      const size_t hb = h * blocks + b;
      __m512i dots = _mm512_set1_epi32(-F::kKeyOffset * qb.sums[hb]);
#pragma GCC unroll 8
      for (int j = 0; j < 8; j++) dots = _mm512_dpbusd_epi32(dots, t[j], _mm512_set1_epi32(loadI32(qh + 4 * j)));
      const __m512 factor = _mm512_mul_ps(keyScales, _mm512_set1_ps(qb.s[hb] * scale));
      acc[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), factor, acc[h]);
    }
  }
  const __mmask16 m = tailMask(n);
#pragma GCC unroll 8
  for (int h = 0; h < HC; h++) _mm512_mask_storeu_ps(scores + h * stride, m, acc[h]);
}

template <class F>
void scoreQuant(const float*, const QueryBlocks& qb, size_t heads, const uint8_t* const* keys, size_t count, size_t d,
                float scale, float* scores, size_t stride, const NextBytes& next) {
  forKeyGroups<16, 8>(qb, heads, d, keys, count, scores, stride, next,
                      [&](auto hc, const QueryBlocks& chunk, const uint8_t* const* rows, size_t n, float* at,
                          const uint8_t* const* nextRows, size_t nextCount) {
                        quantScoreHeads16<decltype(hc)::value, F>(chunk, d, rows, n, scale, at, stride, nextRows, nextCount);
                      });
}

template <class F>
void accumulateQuant(float* out, size_t heads, const uint8_t* const* values, const float* weights, size_t stride, size_t count,
                     size_t d, const NextBytes& next) {
  const auto scales = [](const uint8_t* const* rows, size_t n, size_t at, float* out) {
    for (size_t p = 0; p < n; p += 16) _mm512_store_ps(out + p, blockScales16(rows + p, std::min<size_t>(16, n - p), at));
  };
  forValueBlocks<8>(heads, values, weights, stride, count, d / kQKBlock, F::kBytes, next, scales,
                    [&](auto hc, size_t h0, size_t b, const uint8_t* const* rows, const float* scaled, size_t n,
                        const uint8_t* const* nextRows, size_t nextCount) {
                      accumulateHeads32<decltype(hc)::value, QuantRows<F>>(out + h0 * d, d, b * kQKBlock, rows, scaled,
                                                                           kValueChunk, n, nextRows, nextCount);
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

const KVTileKernels* avx512KVTiles() { return kTiles; }

}  // namespace vserve
