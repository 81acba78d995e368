// The AVX-512 attention tile loops (KernelSet::scoreTile / accumulateTile), written once over how a
// row's values are loaded (`Rows`), so the f32 kernels (avx512_kernels.cc) and the f16 KV-format kernels
// (avx512_kv_tiles.cc) are the same code. Internal linkage, as kquant_blocks.h explains: only the
// AVX-512 translation units include this.
//
// A Rows type has
//   using Row = ...;                      a row slice's address (keys[p], values[p])
//   __m512 load(Row, i)                   values i..i+15 as floats
//   __m512 loadMasked(Row, i, mask)       the same, lanes outside the mask zero and not read
//   void prefetch(Row, i, n)              prefetches the lines that values [i, i + n) begin
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "tile_helpers.h"

namespace vserve {
namespace {

inline __mmask16 tailMask(size_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1); }

struct F32Rows {
  using Row = const float*;
  static __m512 load(Row r, size_t i) { return _mm512_loadu_ps(r + i); }
  static __m512 loadMasked(Row r, size_t i, __mmask16 m) { return _mm512_maskz_loadu_ps(m, r + i); }
  static void prefetch(Row r, size_t i, size_t n) { prefetchLines(r, i, n); }
};

struct F16Rows {
  using Row = const uint8_t*;
  static __m512 load(Row r, size_t i) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + 2 * i))); }
  static __m512 loadMasked(Row r, size_t i, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, r + 2 * i)); }
  static void prefetch(Row r, size_t i, size_t n) { prefetchLines(reinterpret_cast<const uint16_t*>(r), i, n); }
};

template <class R>
float rowDot(const float* q, typename R::Row row, size_t n) {
  __m512 acc = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tailMask(n - i);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), R::loadMasked(row, i, m), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// One query head against `count` keys, four positions' dots at a time: four independent FMA chains
// instead of one call (and one dependent chain) per position.
template <class R>
void scoreOneHead(const float* q, const typename R::Row* keys, size_t count, size_t d, float scale, float* scores) {
  size_t p = 0;
  for (; p + 4 <= count; p += 4) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < d; i += 16) {
      const __mmask16 m = tailMask(d - i);
      const __m512 qv = _mm512_maskz_loadu_ps(m, q + i);
      a0 = _mm512_fmadd_ps(qv, R::loadMasked(keys[p], i, m), a0);
      a1 = _mm512_fmadd_ps(qv, R::loadMasked(keys[p + 1], i, m), a1);
      a2 = _mm512_fmadd_ps(qv, R::loadMasked(keys[p + 2], i, m), a2);
      a3 = _mm512_fmadd_ps(qv, R::loadMasked(keys[p + 3], i, m), a3);
    }
    scores[p] = _mm512_reduce_add_ps(a0) * scale;
    scores[p + 1] = _mm512_reduce_add_ps(a1) * scale;
    scores[p + 2] = _mm512_reduce_add_ps(a2) * scale;
    scores[p + 3] = _mm512_reduce_add_ps(a3) * scale;
  }
  for (; p < count; p++) scores[p] = rowDot<R>(q, keys[p], d) * scale;
}

// In-register transpose of a 16x16 block of floats (r[i] = row i in, column i out): pairs of rows
// interleaved as floats, then as float pairs, then 128-bit lanes gathered across the four row groups.
inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int k = 0; k < 8; k++) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  __m512 u[16];
  for (int k = 0; k < 4; k++) {
    const __m512d a = _mm512_castps_pd(t[4 * k]), b = _mm512_castps_pd(t[4 * k + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * k + 2]), e = _mm512_castps_pd(t[4 * k + 3]);
    u[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
    u[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
  }
  for (int j = 0; j < 4; j++) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44), v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44), w1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xEE);
    r[j] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[4 + j] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
    r[8 + j] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
  }
}

// HC query heads (one GQA group, or part of it) against 16 keys. The keys' 16-dim slices are transposed
// so each vector holds one dimension of all 16 positions: every head then needs one FMA per dimension
// with its query element broadcast, and no horizontal sums (which cost more than the dots when each
// (head, position) pair ends in its own reduction). The transpose is shared by all HC heads.
// `next` (nextCount of them, up to 16) are the rows 16 positions on in the next tile; each line read
// here has its counterpart there prefetched.
template <int HC, class R>
void scoreHeads16(const float* q, size_t d, const typename R::Row* keys, float scale, float* scores, size_t stride,
                  const typename R::Row* next, size_t nextCount) {
  __m512 acc[HC];
#pragma GCC unroll 8
  for (int h = 0; h < HC; h++) acc[h] = _mm512_setzero_ps();
  for (size_t i = 0; i < d; i += 16) {
    for (size_t p = 0; p < nextCount; p++) R::prefetch(next[p], i, 16);
    __m512 k[16];
#pragma GCC unroll 16
    for (int p = 0; p < 16; p++) k[p] = R::load(keys[p], i);
    transpose16(k);
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) {
#pragma GCC unroll 8
      for (int h = 0; h < HC; h++) acc[h] = _mm512_fmadd_ps(k[j], _mm512_set1_ps(q[h * d + i + j]), acc[h]);
    }
  }
  const __m512 s = _mm512_set1_ps(scale);
#pragma GCC unroll 8
  for (int h = 0; h < HC; h++) _mm512_storeu_ps(scores + h * stride, _mm512_mul_ps(acc[h], s));
}

// KernelSet::scoreTile over any Rows; `next` / `nextCount`: the following tile's rows.
template <class R>
void scoreRows(const float* q, size_t heads, const typename R::Row* keys, size_t count, size_t d, float scale, float* scores,
               size_t stride, const typename R::Row* next, size_t nextCount) {
  size_t p = 0;
  // The transposed form pays 64 shuffles per 16x16 block: worth it once two or more heads share them.
  if (heads >= 2 && d % 16 == 0) {
    for (; p + 16 <= count; p += 16) {
      // The first chunk of heads prefetches the next tile's counterparts of the rows it reads.
      const size_t ahead = nextCount > p ? std::min<size_t>(16, nextCount - p) : 0;
      for (size_t h0 = 0; h0 < heads; h0 += 8) {
        withHeadCount<8>(heads - h0, [&](auto hc) {
          scoreHeads16<decltype(hc)::value, R>(q + h0 * d, d, keys + p, scale, scores + h0 * stride + p, stride, next + p,
                                               h0 == 0 ? ahead : 0);
        });
      }
    }
  }
  if (p == count) return;
  for (size_t h = 0; h < heads; h++) scoreOneHead<R>(q + h * d, keys + p, count - p, d, scale, scores + h * stride + p);
}

// Keeps 64 output floats in registers across all positions (axpy per position stores and reloads
// them, a store-to-load chain per position); four independent accumulators per step.
template <class R>
void accumulateOneHead(float* out, const typename R::Row* values, const float* weights, size_t count, size_t d) {
  for (size_t i = 0; i < d; i += 64) {
    const __mmask16 m0 = tailMask(d - i), m1 = tailMask(d > i + 16 ? d - i - 16 : 0),
                    m2 = tailMask(d > i + 32 ? d - i - 32 : 0), m3 = tailMask(d > i + 48 ? d - i - 48 : 0);
    __m512 o0 = _mm512_maskz_loadu_ps(m0, out + i), o1 = _mm512_maskz_loadu_ps(m1, out + i + 16),
           o2 = _mm512_maskz_loadu_ps(m2, out + i + 32), o3 = _mm512_maskz_loadu_ps(m3, out + i + 48);
    for (size_t p = 0; p < count; p++) {
      const __m512 w = _mm512_set1_ps(weights[p]);
      o0 = _mm512_fmadd_ps(w, R::loadMasked(values[p], i, m0), o0);
      o1 = _mm512_fmadd_ps(w, R::loadMasked(values[p], i + 16, m1), o1);
      o2 = _mm512_fmadd_ps(w, R::loadMasked(values[p], i + 32, m2), o2);
      o3 = _mm512_fmadd_ps(w, R::loadMasked(values[p], i + 48, m3), o3);
    }
    _mm512_mask_storeu_ps(out + i, m0, o0);
    _mm512_mask_storeu_ps(out + i + 16, m1, o1);
    _mm512_mask_storeu_ps(out + i + 32, m2, o2);
    _mm512_mask_storeu_ps(out + i + 48, m3, o3);
  }
}

// HC heads' outputs, 32 dimensions at a time, kept in registers across the tile: each value slice is
// loaded once for all the heads of the group instead of once per head.
// Prefetches the next tile's counterpart of each value line it reads (next[p], p < nextCount).
template <int HC, class R>
void accumulateHeads32(float* out, size_t d, size_t i, const typename R::Row* values, const float* weights, size_t stride,
                       size_t count, const typename R::Row* next, size_t nextCount) {
  __m512 o0[HC], o1[HC];
#pragma GCC unroll 8
  for (int h = 0; h < HC; h++) {
    o0[h] = _mm512_loadu_ps(out + h * d + i);
    o1[h] = _mm512_loadu_ps(out + h * d + i + 16);
  }
  for (size_t p = 0; p < count; p++) {
    if (p < nextCount) R::prefetch(next[p], i, 32);
    const __m512 v0 = R::load(values[p], i), v1 = R::load(values[p], i + 16);
#pragma GCC unroll 8
    for (int h = 0; h < HC; h++) {
      const __m512 w = _mm512_set1_ps(weights[h * stride + p]);
      o0[h] = _mm512_fmadd_ps(w, v0, o0[h]);
      o1[h] = _mm512_fmadd_ps(w, v1, o1[h]);
    }
  }
#pragma GCC unroll 8
  for (int h = 0; h < HC; h++) {
    _mm512_storeu_ps(out + h * d + i, o0[h]);
    _mm512_storeu_ps(out + h * d + i + 16, o1[h]);
  }
}

// KernelSet::accumulateTile over any Rows.
template <class R>
void accumulateRows(float* out, size_t heads, const typename R::Row* values, const float* weights, size_t stride, size_t count,
                    size_t d, const typename R::Row* next, size_t nextCount) {
  if (heads < 2 || d % 32 != 0) {
    for (size_t h = 0; h < heads; h++) accumulateOneHead<R>(out + h * d, values, weights + h * stride, count, d);
    return;
  }
  for (size_t h0 = 0; h0 < heads; h0 += 8) {
    for (size_t i = 0; i < d; i += 32) {
      withHeadCount<8>(heads - h0, [&](auto hc) {
        accumulateHeads32<decltype(hc)::value, R>(out + h0 * d, d, i, values, weights + h0 * stride, stride, count, next,
                                                  h0 == 0 ? nextCount : 0);
      });
    }
  }
}

}  // namespace
}  // namespace vserve
