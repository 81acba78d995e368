// Arithmetic that the AVX-512 kernels do exactly as llama.cpp's AVX-512 build does it, so both engines get
// the same bits: how a row's eight f32 lane sums are added (its hsum_float_8), and its exp and silu.
// Internal linkage (see kquant_blocks.h).
#pragma once
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../cpu_features.h"
#include "../kernel_set.h"

namespace vserve {
namespace {

// ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), per row lane.
inline __m512 sumLanesInLlamaCppOrder(const __m512 (&lanes)[8]) {
  const __m512 even = _mm512_add_ps(_mm512_add_ps(lanes[0], lanes[4]), _mm512_add_ps(lanes[2], lanes[6]));
  const __m512 odd = _mm512_add_ps(_mm512_add_ps(lanes[1], lanes[5]), _mm512_add_ps(lanes[3], lanes[7]));
  return _mm512_add_ps(even, odd);
}

// A K-quant tile's rows one at a time through rowKernel(x, row, group, out), in llama.cpp's order, where
// that order applies: always in a decode (its cost hides behind the weight reads), in a prefill when asked
// (prefillInLlamaCppOrder). Returns false where the tile's own order applies.
template <int RX, class RowKernel>
inline bool tileRowsInLlamaCppOrder(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride, RowKernel rowKernel) {
  if (x.rows != 1 && !prefillInLlamaCppOrder()) return false;
  for (int i = 0; i < RX; i++) rowKernel(x, i0 + i, group, out + (i0 + i) * outStride);
  return true;
}

// How many of a matmul's n activation rows llama.cpp's repacked kernels (Q2_K, Q4_K) take through their
// gemm: the first n - n % 4 where n > 3; the rest go through their gemv, one row at a time.
inline size_t llamaCppGemmRows(size_t n) { return n > 3 ? n - n % 4 : 0; }

// Where dot k (k < 8) of a 32-value block starts when the weights carry +bias: -bias times the sum of
// activations 4k..4k+3, so each lane's integer dot is the one of the weights' true values.
inline void offsetStarts(const int8_t* xq, uint8_t bias, int32_t (&start)[8]) {
  const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(char(bias)), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(start), _mm256_sub_epi32(_mm256_setzero_si256(), sums));
}

// Sub-block j's 16 row scales (signed bytes, 16 apart per sub-block) as int16 in the low half of each
// dword, the other half zero: vpdpwssd against a dot that fits in int16 then adds scale * dot, for the
// K-quant kernels that keep llama.cpp's eight integer lanes.
inline __m512i rowScalesLowHalves(const uint8_t* scales, int j) {
  return _mm512_cvtepu16_epi32(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 16 * j))));
}

// exp on 16 lanes in llama.cpp's steps (the AVX-512 form of its vector expf, from Arm's optimized
// routines): n = x / ln 2 rounded by adding and removing 1.5 * 2^23, b = x - n ln 2 with ln 2 in two
// parts, exp(b) by a degree-5 polynomial in b and b^2, then scaled by 2^n. Where |n| > 192 the result is
// 0 (n <= 0) or infinity. Within 2 ulp of exp; what matters here is that it is the same function.
inline __m512 expAsLlamaCpp(__m512 x) {
  const __m512 shift = _mm512_set1_ps(0x1.8p23f);
  const __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), shift), shift);
  const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f), _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
  const __m512 b2 = _mm512_mul_ps(b, b);
  const __m512 high = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), b2,
                                      _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f)));
  const __m512 poly = _mm512_fmadd_ps(high, b2, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
  const __m512 result = _mm512_scalef_ps(poly, n);
  const __mmask16 outOfRange = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192.0f), _CMP_GT_OQ);
  if (outOfRange == 0) return result;
  const __mmask16 underflow = _mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ);
  const __m512 limit = _mm512_mask_blend_ps(underflow, _mm512_set1_ps(INFINITY), _mm512_setzero_ps());
  return _mm512_mask_blend_ps(outOfRange, result, limit);
}

// silu(x) = x / (1 + exp(-x)), as llama.cpp's vector silu takes it.
inline __m512 siluAsLlamaCpp(__m512 x) {
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), expAsLlamaCpp(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

}  // namespace
}  // namespace vserve
