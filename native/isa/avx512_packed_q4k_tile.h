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
#include "avx512_llama_cpp_order.h"
#include "weight_prefetch.h"

namespace vserve {
namespace {

inline __m512i broadcastDword(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Where the parts of one packed super-block column start: the 16 rows' 6-bit scales and mins, the
// nibbles, and (Q5_K) the fifth bits.
struct Q4_KLayoutColumn {
  const uint8_t* scales;
  const uint8_t* mins;
  const uint8_t* quants;
  const uint8_t* high;
};

inline Q4_KLayoutColumn q4KLayoutColumn(const uint8_t* p) {
  const uint8_t* scales = p + 64;
  return {scales, scales + 8 * kPackRows, scales + 16 * kPackRows, p + kQ5_KPackedHighAt};
}

// 16 weight rows (one group) x RX activation rows from i0, summed as llama.cpp's K-quant dot products
// sum: in integers within each super-block, then one float multiply-add each for the scales and the
// mins. Per sub-block the 8 quant vectors (low or high nibbles of a chunk; Q5_K: each gains its fifth
// bit from the high-bit vector of the same k, bit 2c for the low nibbles and 2c + 1 for the high ones)
// are made once; each activation row takes 8 vpdpbusd against broadcast activation dwords, and the
// 16 rows' 6-bit scales multiply that sum. The mins meet the activation sums in 4 vpdpwssd. With
// `asLlamaCppGemm` (Q4_K) the sums go as in llama.cpp's repacked Q4_K gemm, its prefill: the mins in a sum
// of their own, and both sums taking each 64 values (two sub-blocks) on their own.
template <int RX, bool kFifthBit>
void packedQ4_KLayoutTile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride, bool asLlamaCppGemm = false) {
  constexpr size_t kColumnBytes = kFifthBit ? kQ5_KPackedBytes : kQ4_KPackedBytes;
  const size_t supers = x.cols / kQKSuper;
  const size_t blocks = x.cols / kQKBlock;
  const __m512i low = _mm512_set1_epi8(0x0f);
  const __m512i fifth = _mm512_set1_epi8(0x10);
  // A one-row Q4_K matmul keeps the mins' products in a sum of their own, subtracted at the end, as
  // llama.cpp's repacked Q4_K gemv does (its decode); with one row that costs one register.
  const bool gemm = !kFifthBit && asLlamaCppGemm;
  const bool minsApart = !kFifthBit && (RX == 1 || gemm);
  const int chunksPerSum = gemm ? 1 : 4;
  __m512 acc[RX], accMins[RX];
  for (int i = 0; i < RX; i++) acc[i] = accMins[i] = _mm512_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kColumnBytes) {
    prefetchWeightLines(p + kWeightPrefetchBytes, kColumnBytes);
    const auto [scales, mins, quantsAt, high] = q4KLayoutColumn(p);
    const uint8_t* quants = quantsAt;
    // Lane r of vector c: the mins of sub-blocks 2c and 2c + 1 of row r as an int16 pair, against the
    // activation sums of the same sub-blocks (KQuantRows::blockSums, read as one dword).
    __m512i minPairs[4];
    for (int c = 0; c < 4; c++) {
      const __m512i even = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mins + 32 * c)));
      const __m512i odd = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mins + 32 * c + 16)));
      minPairs[c] = _mm512_or_si512(even, _mm512_slli_epi32(odd, 16));
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512 negDmin = _mm512_sub_ps(_mm512_setzero_ps(), _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32))));
    // At most 8 sub-blocks x 32 x 31 x 127 x 63 in magnitude: well inside int32.
    __m512i total[RX], m[RX];
    for (int i = 0; i < RX; i++) total[i] = m[i] = _mm512_setzero_si512();
    for (int c = 0; c < 4; c++, quants += 32 * kPackRows) {
      for (int half = 0; half < 2; half++) {
        // Q5_K: a byte test of the high-bit vector turns the value's fifth bit into a lane mask, and a
        // masked add sets bit 4.
        const __m512i bit = _mm512_set1_epi8(char(1 << (2 * c + half)));
        __m512i w[8];
        for (int k = 0; k < 8; k++) {
          const __m512i v = _mm512_loadu_si512(quants + 64 * k);
          w[k] = half == 0 ? _mm512_and_si512(v, low) : _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
          if constexpr (kFifthBit) {
            w[k] = _mm512_mask_add_epi8(w[k], _mm512_test_epi8_mask(_mm512_loadu_si512(high + 64 * k), bit), w[k], fifth);
          }
        }
        const __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 32 * c + 16 * half)));
        for (int i = 0; i < RX; i++) {
          const int8_t* xq = x.q + (i0 + i) * x.cols + b * kQKSuper + 64 * c + 32 * half;
          __m512i d0 = _mm512_setzero_si512(), d1 = d0;  // two dependency chains
          for (int k = 0; k < 8; k += 2) {
            d0 = _mm512_dpbusd_epi32(d0, w[k], broadcastDword(xq + 4 * k));
            d1 = _mm512_dpbusd_epi32(d1, w[k + 1], broadcastDword(xq + 4 * k + 4));
          }
          total[i] = _mm512_add_epi32(total[i], _mm512_mullo_epi32(_mm512_add_epi32(d0, d1), sc));
        }
      }
      for (int i = 0; i < RX; i++) {
        const int16_t* qsum = x.blockSums + (i0 + i) * blocks + b * 8;
        m[i] = _mm512_dpwssd_epi32(m[i], minPairs[c], broadcastDword(reinterpret_cast<const int8_t*>(qsum + 2 * c)));
      }
      if ((c + 1) % chunksPerSum != 0) continue;
      for (int i = 0; i < RX; i++) {
        const __m512 dx = _mm512_set1_ps(x.d[(i0 + i) * blocks + b * 8]);
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(total[i]), _mm512_mul_ps(d, dx), acc[i]);
        __m512& sum = minsApart ? accMins[i] : acc[i];
        sum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m[i]), _mm512_mul_ps(negDmin, dx), sum);
        total[i] = m[i] = _mm512_setzero_si512();
      }
    }
  }
  for (int i = 0; i < RX; i++) _mm512_storeu_ps(out + (i0 + i) * outStride, minsApart ? _mm512_add_ps(acc[i], accMins[i]) : acc[i]);
}

// Activation row `row` against Q5_K in the order of llama.cpp's dot product of that type, which
// sums a row in eight f32 lanes: lane k gathers, per super-block, each 32-value chunk's sub-block scale
// times the integer dot of the chunk's values 4k..4k+3, and adds d_w * d_x times that in one fused
// multiply-add; the lanes are added as ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), and then one f32
// sum of dmin times each super-block's mins against the activations' sums. This costs 64 vpdpwssd per
// super-block more than the tile. Q4_K does not take it: llama.cpp repacks Q4_K on x86 and sums the
// repacked rows another way (the 32-value types' packedRowInLlamaCppOrder says why matching matters).
inline void packedQ5_KRowInLlamaCppOrder(const KQuantRows& x, size_t row, const uint8_t* group, float* out) {
  const size_t supers = x.cols / kQKSuper;
  const __m512i low = _mm512_set1_epi8(0x0f);
  const __m512i fifth = _mm512_set1_epi8(0x10);
  const __m512i zero = _mm512_setzero_si512();
  __m512 acc[8];
  for (int k = 0; k < 8; k++) acc[k] = _mm512_setzero_ps();
  __m512 accMin = _mm512_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kQ5_KPackedBytes) {
    prefetchWeightLines(p + kWeightPrefetchBytes, kQ5_KPackedBytes);
    const auto [scales, mins, quantsAt, high] = q4KLayoutColumn(p);
    const uint8_t* quants = quantsAt;
    __m512i lanes[8];
    for (int k = 0; k < 8; k++) lanes[k] = zero;
    for (int c = 0; c < 4; c++, quants += 32 * kPackRows) {
      for (int half = 0; half < 2; half++) {
        const __m512i bit = _mm512_set1_epi8(char(1 << (2 * c + half)));
        // The 16 rows' scale of this chunk in the low half of each dword: vpdpwssd multiplies it by the
        // chunk's dot (|dot| < 2^15) and adds the product into the lane.
        const __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 32 * c + 16 * half)));
        const int8_t* xq = x.q + row * x.cols + b * kQKSuper + 64 * c + 32 * half;
        for (int k = 0; k < 8; k++) {
          const __m512i v = _mm512_loadu_si512(quants + 64 * k);
          __m512i w = half == 0 ? _mm512_and_si512(v, low) : _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
          w = _mm512_mask_add_epi8(w, _mm512_test_epi8_mask(_mm512_loadu_si512(high + 64 * k), bit), w, fifth);
          lanes[k] = _mm512_dpwssd_epi32(lanes[k], _mm512_dpbusd_epi32(zero, w, broadcastDword(xq + 4 * k)), sc);
        }
      }
    }
    // Each row's mins against the activation sums of the same sub-blocks, as one integer.
    const int16_t* qsum = x.blockSums + row * (x.cols / kQKBlock) + b * 8;
    __m512i minDot = zero;
    for (int t = 0; t < 4; t++) {
      const __m512i even = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mins + 32 * t)));
      const __m512i odd = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mins + 32 * t + 16)));
      minDot = _mm512_dpwssd_epi32(minDot, _mm512_or_si512(even, _mm512_slli_epi32(odd, 16)), broadcastDword(reinterpret_cast<const int8_t*>(qsum + 2 * t)));
    }
    const __m512 dx = _mm512_set1_ps(x.d[row * (x.cols / kQKBlock) + b * 8]);
    const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), dx);
    const __m512 negDmin = _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)))), dx);
    for (int k = 0; k < 8; k++) acc[k] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(lanes[k]), acc[k]);
    accMin = _mm512_fmadd_ps(negDmin, _mm512_cvtepi32_ps(minDot), accMin);
  }
  _mm512_storeu_ps(out, _mm512_add_ps(sumLanesInLlamaCppOrder(acc), accMin));
}

}  // namespace
}  // namespace vserve
