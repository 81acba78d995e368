// How llama.cpp adds up the eight f32 lane sums of a row's dot product (its hsum_float_8), for the
// AVX-512 decode kernels that keep those lanes for 16 rows at once. Internal linkage (see kquant_blocks.h).
#pragma once
#include <immintrin.h>

namespace vserve {
namespace {

// ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), per row lane.
inline __m512 sumLanesInLlamaCppOrder(const __m512 (&lanes)[8]) {
  const __m512 even = _mm512_add_ps(_mm512_add_ps(lanes[0], lanes[4]), _mm512_add_ps(lanes[2], lanes[6]));
  const __m512 odd = _mm512_add_ps(_mm512_add_ps(lanes[1], lanes[5]), _mm512_add_ps(lanes[3], lanes[7]));
  return _mm512_add_ps(even, odd);
}

}  // namespace
}  // namespace vserve
