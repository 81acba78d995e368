// The 6-bit values of a packed Q6_K super-block column (packed_weights.h), one run of 32 values at a time,
// for the kernels compiled with AVX-512 (the AVX-512 packed kernel and the AMX tiles unpack the same way).
// Run c of half h (values 128h + 32c ..) takes its low 4 bits from ql vectors 0-7 (c even) or 8-15 (c odd),
// low nibbles for c < 2 and high ones after, and its top 2 bits from qh bits 2c, 2c + 1, moved to bits 4-5.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace vserve {

// Vector k (k < 8) of run C: lane 4r.. holds values 4k.. of the run for row r, in 0..63. C is a template
// argument so that every shift below is a fixed one: with C a loop variable the compiler kept the run loop
// rolled and chose the shifts by branching, per vector.
template <int C>
inline __m512i q6kPackedRunVector(const uint8_t* ql, const uint8_t* qh, int k) {
  static_assert(C >= 0 && C < 4, "a Q6_K half has four runs");
  const __m512i low = _mm512_set1_epi8(0x0f), high = _mm512_set1_epi8(0x30);
  const __m512i l = _mm512_loadu_si512(ql + 64 * (8 * (C & 1) + k));
  const __m512i hb = _mm512_loadu_si512(qh + 64 * k);
  const __m512i lo = C < 2 ? _mm512_and_si512(l, low) : _mm512_and_si512(_mm512_srli_epi16(l, 4), low);
  const __m512i hi = C == 0 ? _mm512_slli_epi16(hb, 4) : C == 1 ? _mm512_slli_epi16(hb, 2) : C == 2 ? hb : _mm512_srli_epi16(hb, 2);
  return _mm512_or_si512(lo, _mm512_and_si512(hi, high));
}

// The same for a run chosen at run time (the AMX tiles unpack one run per call).
inline __m512i q6kPackedRunVector(const uint8_t* ql, const uint8_t* qh, int c, int k) {
  switch (c) {
    case 0: return q6kPackedRunVector<0>(ql, qh, k);
    case 1: return q6kPackedRunVector<1>(ql, qh, k);
    case 2: return q6kPackedRunVector<2>(ql, qh, k);
    default: return q6kPackedRunVector<3>(ql, qh, k);
  }
}

}  // namespace vserve
