// The 6-bit values of a packed Q6_K super-block column (packed_weights.h), one run of 32 values at a time,
// for the kernels compiled with AVX-512 (the AVX-512 packed kernel and the AMX tiles unpack the same way).
// Run c of half h (values 128h + 32c ..) takes its low 4 bits from ql vectors 0-7 (c even) or 8-15 (c odd),
// low nibbles for c < 2 and high ones after, and its top 2 bits from qh bits 2c, 2c + 1, moved to bits 4-5.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace vserve {

// Vector k (k < 8) of run c: lane 4r.. holds values 4k.. of the run for row r, in 0..63.
inline __m512i q6kPackedRunVector(const uint8_t* ql, const uint8_t* qh, int c, int k) {
  const __m512i low = _mm512_set1_epi8(0x0f), high = _mm512_set1_epi8(0x30);
  const __m512i l = _mm512_loadu_si512(ql + 64 * (8 * (c & 1) + k));
  const __m512i hb = _mm512_loadu_si512(qh + 64 * k);
  const __m512i lo = c < 2 ? _mm512_and_si512(l, low) : _mm512_and_si512(_mm512_srli_epi16(l, 4), low);
  __m512i hi;
  switch (c) {
    case 0: hi = _mm512_slli_epi16(hb, 4); break;
    case 1: hi = _mm512_slli_epi16(hb, 2); break;
    case 2: hi = hb; break;
    default: hi = _mm512_srli_epi16(hb, 2); break;
  }
  return _mm512_or_si512(lo, _mm512_and_si512(hi, high));
}

}  // namespace vserve
