// The AVX-512 tile of packed Q4_K and packed Q5_K (packed_weights.h: a Q5_K column is Q4_K's followed by
// the fifth bits), shared by avx512_kernels.cc (Q4_K) and avx512_superblock_kernels.cc (Q5_K).
// Internal linkage, as kquant_blocks.h explains.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "../packed_weights.h"
#include "weight_prefetch.h"

namespace vserve {
namespace {

inline __m512i broadcastDword(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// 16 weight rows (one group) x RX activation rows from i0. Per super-block, the 16 rows' scales and mins
// are converted to f32 once and the mins go against the activation sums; per chunk (two sub-blocks) the 8
// quant vectors are split into low / high nibbles once (Q5_K: each gains its fifth bit from the high-bit
// vector of the same k, bit 2c for the low nibbles and 2c + 1 for the high ones), then each
// activation row takes 16 vpdpbusd against broadcast activation dwords, and one scale multiply-add per
// sub-block.
template <int RX, bool kFifthBit>
void packedQ4_KLayoutTile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
  constexpr size_t kColumnBytes = kFifthBit ? kQ5_KPackedBytes : kQ4_KPackedBytes;
  const size_t supers = x.cols / kQKSuper;
  const size_t blocks = x.cols / kQKBlock, sums = x.cols / 16;
  const __m512i low = _mm512_set1_epi8(0x0f);
  const __m512i fifth = _mm512_set1_epi8(0x10);
  __m512 acc[RX];
  for (int i = 0; i < RX; i++) acc[i] = _mm512_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kColumnBytes) {
    prefetchWeightLines(p + kWeightPrefetchBytes, kColumnBytes);
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512 negDmin = _mm512_sub_ps(_mm512_setzero_ps(), _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32))));
    const uint8_t* scales = p + 64;
    const uint8_t* mins = scales + 8 * kPackRows;
    const uint8_t* quants = mins + 8 * kPackRows;
    const uint8_t* high = p + kQ5_KPackedHighAt;
    for (int j = 0; j < 8; j++) {
      const __m512 m = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mins + 16 * j)))), negDmin);
      for (int i = 0; i < RX; i++) {
        const float* s = x.s + (i0 + i) * sums + b * 16 + 2 * j;
        acc[i] = _mm512_fmadd_ps(m, _mm512_set1_ps(s[0] + s[1]), acc[i]);
      }
    }
    for (int c = 0; c < 4; c++, quants += 32 * kPackRows) {
      // Q5_K: bit 2c of each high-bit byte is the fifth bit of the low nibble in the same lane, bit 2c + 1
      // that of the high nibble. A byte test turns each into a lane mask, and a masked add sets bit 4.
      const __m512i bitLo = _mm512_set1_epi8(char(1 << (2 * c))), bitHi = _mm512_set1_epi8(char(2 << (2 * c)));
      __m512i lo[8], hi[8];
      for (int k = 0; k < 8; k++) {
        const __m512i v = _mm512_loadu_si512(quants + 64 * k);
        lo[k] = _mm512_and_si512(v, low);
        hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        if constexpr (kFifthBit) {
          const __m512i h = _mm512_loadu_si512(high + 64 * k);
          lo[k] = _mm512_mask_add_epi8(lo[k], _mm512_test_epi8_mask(h, bitLo), lo[k], fifth);
          hi[k] = _mm512_mask_add_epi8(hi[k], _mm512_test_epi8_mask(h, bitHi), hi[k], fifth);
        }
      }
      const __m512 scLo = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 32 * c)))), d);
      const __m512 scHi = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 32 * c + 16)))), d);
      for (int i = 0; i < RX; i++) {
        const int8_t* xq = x.q + (i0 + i) * x.cols + b * kQKSuper + 64 * c;
        // Four dependency chains: two per sub-block.
        __m512i l0 = _mm512_setzero_si512(), l1 = l0, h0 = l0, h1 = l0;
        for (int k = 0; k < 8; k += 2) {
          l0 = _mm512_dpbusd_epi32(l0, lo[k], broadcastDword(xq + 4 * k));
          l1 = _mm512_dpbusd_epi32(l1, lo[k + 1], broadcastDword(xq + 4 * k + 4));
          h0 = _mm512_dpbusd_epi32(h0, hi[k], broadcastDword(xq + 32 + 4 * k));
          h1 = _mm512_dpbusd_epi32(h1, hi[k + 1], broadcastDword(xq + 32 + 4 * k + 4));
        }
        const float* dx = x.d + (i0 + i) * blocks + b * 8 + 2 * c;
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(l0, l1)), _mm512_mul_ps(scLo, _mm512_set1_ps(dx[0])), acc[i]);
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(h0, h1)), _mm512_mul_ps(scHi, _mm512_set1_ps(dx[1])), acc[i]);
      }
    }
  }
  for (int i = 0; i < RX; i++) _mm512_storeu_ps(out + (i0 + i) * outStride, acc[i]);
}

}  // namespace
}  // namespace vserve
