// Scalar unpacking of Q2_K, Q3_K, Q5_K and IQ4_XS super-blocks (256 values; ggml-common.h layouts)
// into integer quants in value order and integer factors per 16 values:
//   value[i] = d * scale[i / 16] * q[i] - dmin * min[i / 16]
// The one statement of these bit layouts in the native core: dequantize.cc and the portable kernels
// use it directly, and the SIMD kernels are tested against it. Internal linkage (anonymous namespace)
// so a copy compiled with ISA flags is never shared with portable code.
#pragma once
#include <cstdint>
#include <cstring>

#include "ggml_types.h"

namespace vserve {
namespace {

struct SuperBlockInts {
  int8_t q[kQKSuper];
  int16_t scale[16];
  int16_t min[16];  // zero for the types without mins (Q3_K, IQ4_XS)
  float d, dmin;
};

// Byte offsets inside the blocks.
constexpr int kQ2_KQuantsAt = 16, kQ2_KDAt = 80;
constexpr int kQ3_KQuantsAt = 32, kQ3_KScalesAt = 96, kQ3_KDAt = 108;
constexpr int kQ5_KScalesAt = 4, kQ5_KHighAt = 16, kQ5_KQuantsAt = 48;
constexpr int kIQ4_XSScalesLowAt = 4, kIQ4_XSQuantsAt = 8;

// Q2_K and Q3_K store value 128h + 32s + l (h < 2, s < 4, l < 32) in bits 2s..2s+1 of quant byte 32h + l;
// its sub-block of 16 is 8h + 2s + l / 16.

inline void unpackQ2_K(const uint8_t* blk, SuperBlockInts& out) {
  for (int g = 0; g < 16; g++) {
    out.scale[g] = int16_t(blk[g] & 0xf);
    out.min[g] = int16_t(blk[g] >> 4);
  }
  for (int h = 0; h < 2; h++)
    for (int s = 0; s < 4; s++)
      for (int l = 0; l < 32; l++) out.q[128 * h + 32 * s + l] = int8_t((blk[kQ2_KQuantsAt + 32 * h + l] >> (2 * s)) & 3);
  out.d = halfToFloat(loadU16(blk + kQ2_KDAt));
  out.dmin = halfToFloat(loadU16(blk + kQ2_KDAt + 2));
}

// The sixteen 6-bit Q3_K scales (still +32 biased), byte g = sub-block g. Packing: the low 4 bits of
// scales 0-7 are the low nibbles of bytes 0-7 and those of scales 8-15 their high nibbles; the top 2
// bits of scale g are at bit 2 * (g / 4) of byte 8 + g % 4. Whole 32-bit words; assumes little-endian.
inline void unpackQ3_KScales(const uint8_t* packed, uint8_t* scales) {
  uint32_t a, b, c;
  std::memcpy(&a, packed, 4);
  std::memcpy(&b, packed + 4, 4);
  std::memcpy(&c, packed + 8, 4);
  const uint32_t low = 0x0f0f0f0fu, top = 0x03030303u;
  const uint32_t words[4] = {(a & low) | ((c & top) << 4), (b & low) | (((c >> 2) & top) << 4),
                             ((a >> 4) & low) | (((c >> 4) & top) << 4), ((b >> 4) & low) | (((c >> 6) & top) << 4)};
  std::memcpy(scales, words, 16);
}

// Q3_K quants: the two low bits minus 4 unless the value's hmask bit (bit 4h + s of hmask byte l) is set.
inline void unpackQ3_K(const uint8_t* blk, SuperBlockInts& out) {
  uint8_t scales[16];
  unpackQ3_KScales(blk + kQ3_KScalesAt, scales);
  for (int g = 0; g < 16; g++) {
    out.scale[g] = int16_t(scales[g] - 32);
    out.min[g] = 0;
  }
  for (int h = 0; h < 2; h++) {
    for (int s = 0; s < 4; s++) {
      for (int l = 0; l < 32; l++) {
        const int low = (blk[kQ3_KQuantsAt + 32 * h + l] >> (2 * s)) & 3;
        const int high = (blk[l] >> (4 * h + s)) & 1;
        out.q[128 * h + 32 * s + l] = int8_t(low - (high ? 0 : 4));
      }
    }
  }
  out.d = halfToFloat(loadU16(blk + kQ3_KDAt));
  out.dmin = 0.0f;
}

// Q5_K: Q4_K's scales, mins and nibble layout, plus bit 2p (low nibbles of chunk p) or 2p + 1 (high
// nibbles) of qh byte l as the value's fifth bit.
inline void unpackQ5_K(const uint8_t* blk, SuperBlockInts& out) {
  const uint8_t* sc = blk + kQ5_KScalesAt;
  for (int j = 0; j < 8; j++) {
    int scale, min;
    if (j < 4) {
      scale = sc[j] & 63;
      min = sc[j + 4] & 63;
    } else {
      scale = (sc[j + 4] & 0xf) | ((sc[j - 4] >> 6) << 4);
      min = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
    }
    out.scale[2 * j] = out.scale[2 * j + 1] = int16_t(scale);
    out.min[2 * j] = out.min[2 * j + 1] = int16_t(min);
  }
  const uint8_t* qh = blk + kQ5_KHighAt;
  for (int p = 0; p < 4; p++) {
    const uint8_t* qs = blk + kQ5_KQuantsAt + 32 * p;
    for (int l = 0; l < 32; l++) {
      out.q[64 * p + l] = int8_t((qs[l] & 0xf) | (((qh[l] >> (2 * p)) & 1) << 4));
      out.q[64 * p + 32 + l] = int8_t((qs[l] >> 4) | (((qh[l] >> (2 * p + 1)) & 1) << 4));
    }
  }
  out.d = halfToFloat(loadU16(blk));
  out.dmin = halfToFloat(loadU16(blk + 2));
}

// The 6-bit scale of IQ4_XS sub-block j (of 32): a nibble of scales_l[j / 2], two bits of scales_h. +32 bias.
inline int iq4xsScale(const uint8_t* blk, int j) {
  const int low = (blk[kIQ4_XSScalesLowAt + j / 2] >> (4 * (j & 1))) & 0xf;
  const int high = (loadU16(blk + 2) >> (2 * j)) & 3;
  return low | (high << 4);
}

// IQ4_XS: sub-block j's 16 quant bytes hold values 0-15 in their low nibbles and 16-31 in the high ones.
inline void unpackIQ4_XS(const uint8_t* blk, SuperBlockInts& out) {
  for (int j = 0; j < 8; j++) {
    out.scale[2 * j] = out.scale[2 * j + 1] = int16_t(iq4xsScale(blk, j) - 32);
    out.min[2 * j] = out.min[2 * j + 1] = 0;
    const uint8_t* qs = blk + kIQ4_XSQuantsAt + 16 * j;
    for (int l = 0; l < 16; l++) {
      out.q[32 * j + l] = kIQ4_NLValues[qs[l] & 0xf];
      out.q[32 * j + 16 + l] = kIQ4_NLValues[qs[l] >> 4];
    }
  }
  out.d = halfToFloat(loadU16(blk));
  out.dmin = 0.0f;
}

// Unpacks a super-block of one of the four types; false for any other type.
inline bool unpackSuperBlock(int type, const uint8_t* blk, SuperBlockInts& out) {
  switch (type) {
    case kQ2_K: unpackQ2_K(blk, out); return true;
    case kQ3_K: unpackQ3_K(blk, out); return true;
    case kQ5_K: unpackQ5_K(blk, out); return true;
    case kIQ4_XS: unpackIQ4_XS(blk, out); return true;
    default: return false;
  }
}

}  // namespace
}  // namespace vserve
