// Scalar decoding of one block of the 32-element types Q4_1, Q5_0, Q5_1 and IQ4_NL into integer quants
// and factors with x_j = d * q_j + m. Shared by dequantization and the portable kernels, so the two read
// the layouts (ggml_types.h) the same way; the SIMD kernels decode the same values their own way.
// Internal linkage (an anonymous namespace), as kquant_blocks.h explains, in case an ISA file includes it.
#pragma once
#include <cstdint>
#include <cstring>

#include "ggml_types.h"

namespace vserve {
namespace {

struct Block32Values {
  int8_t q[kQKBlock];  // Q4_1: 0..15, Q5_0: -16..15, Q5_1: 0..31, IQ4_NL: the grid values
  float d;
  float m;  // 0 for the types without a min
};

// The 5th bit of each element of a Q5 block: bit j of the little-endian qh word goes with element j.
inline uint32_t q5HighBits(const uint8_t* qh) {
  return uint32_t(qh[0]) | uint32_t(qh[1]) << 8 | uint32_t(qh[2]) << 16 | uint32_t(qh[3]) << 24;
}

// Decodes one block of `type` (one of the four above; callers check).
inline void unpackBlock32(int type, const uint8_t* blk, Block32Values& v) {
  v.d = halfToFloat(loadU16(blk));
  const bool hasMin = type == kQ4_1 || type == kQ5_1;
  v.m = hasMin ? halfToFloat(loadU16(blk + 2)) : 0.0f;
  const int at = hasMin ? 4 : 2;  // qh (Q5) or qs
  const bool five = type == kQ5_0 || type == kQ5_1;
  const uint32_t qh = five ? q5HighBits(blk + at) : 0;
  const uint8_t* qs = blk + at + (five ? 4 : 0);
  for (int j = 0; j < 16; j++) {
    int lo = qs[j] & 0xf, hi = qs[j] >> 4;
    if (type == kIQ4_NL) {
      lo = kIQ4_NLValues[lo];
      hi = kIQ4_NLValues[hi];
    } else if (five) {
      lo |= int((qh >> j) & 1) << 4;
      hi |= int((qh >> (j + 16)) & 1) << 4;
      if (type == kQ5_0) lo -= 16, hi -= 16;
    }
    v.q[j] = int8_t(lo);
    v.q[j + 16] = int8_t(hi);
  }
}

inline int block32Bytes(int type) {
  switch (type) {
    case kQ4_1: return kQ4_1Bytes;
    case kQ5_0: return kQ5_0Bytes;
    case kQ5_1: return kQ5_1Bytes;
    case kIQ4_NL: return kIQ4_NLBytes;
    default: return 0;
  }
}

}  // namespace
}  // namespace vserve
