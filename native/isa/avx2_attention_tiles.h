// The AVX2 attention tile loops (KernelSet::scoreTile / accumulateTile), as in the AVX-512 file but 8
// positions by 8 dimensions at a time: 16 ymm registers hold 8 transposed key vectors plus up to 4
// heads' sums. Written once over how a row's values are loaded (`Rows`), so the f32 kernels
// (avx2_kernels.cc) and the f16 KV-format kernels (avx2_kv_tiles.cc) are the same code. Internal
// linkage, as kquant_blocks.h explains: only the AVX2 translation units include this.
//
// A Rows type has
//   using Row = ...;                      a row slice's address (keys[p], values[p])
//   __m256 load(Row, i)                   values i..i+7 as floats
//   float one(Row, i)                     value i
//   void prefetch(Row, i, n)              prefetches the lines that values [i, i + n) begin
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "../ggml_types.h"
#include "tile_helpers.h"

namespace vserve {
namespace {

inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

struct F32Rows {
  using Row = const float*;
  static __m256 load(Row r, size_t i) { return _mm256_loadu_ps(r + i); }
  static float one(Row r, size_t i) { return r[i]; }
  static void prefetch(Row r, size_t i, size_t n) { prefetchLines(r, i, n); }
};

struct F16Rows {
  using Row = const uint8_t*;
  static __m256 load(Row r, size_t i) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 2 * i))); }
  static float one(Row r, size_t i) { return halfToFloat(loadU16(r + 2 * i)); }
  static void prefetch(Row r, size_t i, size_t n) { prefetchLines(reinterpret_cast<const uint16_t*>(r), i, n); }
};

template <class R>
float rowDot(const float* q, typename R::Row row, size_t n) {
  __m256 acc = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), R::load(row, i), acc);
  float sum = hsum(acc);
  for (; i < n; i++) sum += q[i] * R::one(row, i);
  return sum;
}

// y += a * row
template <class R>
void rowAxpy(float* y, typename R::Row row, float a, size_t n) {
  const __m256 av = _mm256_set1_ps(a);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, R::load(row, i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * R::one(row, i);
}

// In-register transpose of an 8x8 block of floats (r[i] = row i in, column i out).
inline void transpose8(__m256 (&r)[8]) {
  __m256 t[8], u[8];
  for (int k = 0; k < 4; k++) {
    t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  for (int k = 0; k < 2; k++) {
    u[4 * k] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
    u[4 * k + 1] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
    u[4 * k + 2] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
    u[4 * k + 3] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
  }
  for (int j = 0; j < 4; j++) {
    r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

// HC (<= 4) query heads against 8 keys: each 8-dim slice of the keys is transposed so one vector holds
// one dimension of all 8 positions, and every head needs one FMA per dimension (no horizontal sums).
// `next` (nextCount of them, up to 8): the rows at the same place in the next tile, prefetched a line
// at a time as this tile's are read.
template <int HC, class R>
void scoreHeads8(const float* q, size_t d, const typename R::Row* keys, float scale, float* scores, size_t stride,
                 const typename R::Row* next, size_t nextCount) {
  __m256 acc[HC];
  for (int h = 0; h < HC; h++) acc[h] = _mm256_setzero_ps();
  for (size_t i = 0; i < d; i += 8) {
    for (size_t p = 0; p < nextCount; p++) R::prefetch(next[p], i, 8);
    __m256 k[8];
    for (int p = 0; p < 8; p++) k[p] = R::load(keys[p], i);
    transpose8(k);
    for (int j = 0; j < 8; j++) {
      for (int h = 0; h < HC; h++) acc[h] = _mm256_fmadd_ps(k[j], _mm256_broadcast_ss(q + h * d + i + j), acc[h]);
    }
  }
  const __m256 sv = _mm256_set1_ps(scale);
  for (int h = 0; h < HC; h++) _mm256_storeu_ps(scores + h * stride, _mm256_mul_ps(acc[h], sv));
}

// KernelSet::scoreTile over any Rows; `next` / `nextCount`: the following tile's rows.
template <class R>
void scoreRows(const float* q, size_t heads, const typename R::Row* keys, size_t count, size_t d, float scale, float* scores,
               size_t stride, const typename R::Row* next, size_t nextCount) {
  size_t p = 0;
  // The transpose costs 24 shuffles per 8x8 block: worth it once two or more heads share it.
  if (heads >= 2 && d % 8 == 0) {
    for (; p + 8 <= count; p += 8) {
      const size_t ahead = nextCount > p ? std::min<size_t>(8, nextCount - p) : 0;
      for (size_t h0 = 0; h0 < heads; h0 += 4) {
        withHeadCount<4>(heads - h0, [&](auto hc) {
          // The first pass prefetches.
          scoreHeads8<decltype(hc)::value, R>(q + h0 * d, d, keys + p, scale, scores + h0 * stride + p, stride, next + p,
                                              h0 == 0 ? ahead : 0);
        });
      }
    }
  }
  for (; p < count; p++) {
    for (size_t h = 0; h < heads; h++) scores[h * stride + p] = rowDot<R>(q + h * d, keys[p], d) * scale;
  }
}

// HC (<= 8) heads' outputs for 8 dimensions from i, kept in registers across the tile: each value
// slice is loaded once for all heads of the group.
template <int HC, class R>
void accumulateHeads8(float* out, size_t d, size_t i, const typename R::Row* values, const float* weights, size_t stride,
                      size_t count, const typename R::Row* next, size_t nextCount) {
  __m256 o[HC];
  for (int h = 0; h < HC; h++) o[h] = _mm256_loadu_ps(out + h * d + i);
  for (size_t p = 0; p < count; p++) {
    if (p < nextCount) R::prefetch(next[p], i, 8);
    const __m256 v = R::load(values[p], i);
    for (int h = 0; h < HC; h++) o[h] = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + h * stride + p), v, o[h]);
  }
  for (int h = 0; h < HC; h++) _mm256_storeu_ps(out + h * d + i, o[h]);
}

// KernelSet::accumulateTile over any Rows.
template <class R>
void accumulateRows(float* out, size_t heads, const typename R::Row* values, const float* weights, size_t stride, size_t count,
                    size_t d, const typename R::Row* next, size_t nextCount) {
  if (d % 8 != 0) {
    for (size_t h = 0; h < heads; h++) {
      for (size_t p = 0; p < count; p++) rowAxpy<R>(out + h * d, values[p], weights[h * stride + p], d);
    }
    return;
  }
  for (size_t h0 = 0; h0 < heads; h0 += 8) {
    for (size_t i = 0; i < d; i += 8) {
      withHeadCount<8>(heads - h0, [&](auto hc) {
        accumulateHeads8<decltype(hc)::value, R>(out + h0 * d, d, i, values, weights + h0 * stride, stride, count, next,
                                                 h0 == 0 ? nextCount : 0);
      });
    }
  }
}

}  // namespace
}  // namespace vserve
