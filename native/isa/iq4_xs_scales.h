// The 8 sub-block scales of an IQ4_XS super-block with AVX2 shifts, for the AVX2 and AVX-512 row
// kernels (compiled with AVX2 at least). Sub-block j's 6-bit scale is nibble j of the little-endian
// dword scales_l (bits 4j..4j+3) with bits 2j..2j+1 of scales_h on top, so one variable shift per half
// gives all eight at once instead of a scalar loop per super-block. Internal linkage (see kquant_blocks.h).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../ggml_types.h"

namespace vserve {
namespace {

// Lane j: the 6-bit scale of sub-block j minus its bias of 32 (-32..31).
inline __m256i iq4xsScales(const uint8_t* blk) {
  uint32_t low;
  std::memcpy(&low, blk + 4, 4);  // scales_l
  const uint32_t high = loadU16(blk + 2);  // scales_h
  const __m256i lowBits = _mm256_and_si256(
      _mm256_srlv_epi32(_mm256_set1_epi32(int(low)), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)), _mm256_set1_epi32(0x0f));
  const __m256i highBits = _mm256_and_si256(
      _mm256_srlv_epi32(_mm256_set1_epi32(int(high)), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)), _mm256_set1_epi32(3));
  return _mm256_sub_epi32(_mm256_or_si256(lowBits, _mm256_slli_epi32(highBits, 4)), _mm256_set1_epi32(32));
}

}  // namespace
}  // namespace vserve
