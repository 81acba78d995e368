// GGML tensor types the native core understands, their block geometry (ggml-common.h layouts) and
// scalar half/bfloat conversions. Blocks are addressed by byte offsets, not packed structs, so the
// layout is explicit and independent of compiler packing rules.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vserve {

enum GGMLTypeId : int {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kIQ4_NL = 20,
  kIQ4_XS = 23,
  kBF16 = 30,
};

struct TypeLayout {
  const char* name;
  int blockSize;   // elements per block
  int blockBytes;  // bytes per block
};

// Layout of a supported type, or nullptr when the native core does not handle it.
const TypeLayout* typeLayout(int type);

// Q8_0: { f16 d; int8 qs[32] } -> x = d*q
constexpr int kQ8_0Bytes = 34;
// Q4_0: { f16 d; u8 qs[16] } -> x = d*(nibble-8); low nibbles are elements 0..15, high 16..31
constexpr int kQ4_0Bytes = 18;
// The other 32-element block types (Q4_1, Q5_0, Q5_1, IQ4_NL); nibble order as in Q4_0 throughout.
// Q4_1: { f16 d; f16 m; u8 qs[16] } -> x = d*nibble + m
constexpr int kQ4_1Bytes = 20;
// Q5_0: { f16 d; u8 qh[4]; u8 qs[16] } -> x = d*(q-16), q = nibble | (bit j of qh, a little-endian u32) << 4
// for element j (bits 0..15 go with the low nibbles, 16..31 with the high ones)
constexpr int kQ5_0Bytes = 22;
// Q5_1: { f16 d; f16 m; u8 qh[4]; u8 qs[16] } -> x = d*q + m, q as in Q5_0
constexpr int kQ5_1Bytes = 24;
// IQ4_NL: { f16 d; u8 qs[16] } -> x = d*kIQ4_NLValues[nibble] (a non-linear grid)
constexpr int kIQ4_NLBytes = 18;
inline constexpr int8_t kIQ4_NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
// Q4_K: { f16 d; f16 dmin; u8 scales[12]; u8 qs[128] }, 256 elements in 8 sub-blocks of 32
constexpr int kQ4_KBytes = 144;
// Q6_K: { u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d }, 256 elements in 16 sub-blocks of 16
constexpr int kQ6_KBytes = 210;
// Q2_K: { u8 scales[16]; u8 qs[64]; f16 d; f16 dmin }, 16 sub-blocks of 16 (scale: low nibble, min: high)
constexpr int kQ2_KBytes = 84;
// Q3_K: { u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d }, 16 sub-blocks of 16 with 6-bit scales
constexpr int kQ3_KBytes = 110;
// Q5_K: { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] }, Q4_K's sub-blocks with a fifth bit
constexpr int kQ5_KBytes = 176;
// IQ4_XS: { f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128] }, 8 sub-blocks of 32 through a 16-value table
constexpr int kIQ4_XSBytes = 136;
constexpr int kQKBlock = 32;
constexpr int kQKSuper = 256;

inline uint16_t loadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline float halfToFloat(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exp = 113;
    while ((mant & 0x400) == 0) {
      mant <<= 1;
      exp--;
    }
    bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// The IEEE half nearest to f, ties to even (what F16C's vcvtps2ph and arm64's fcvt do in their default
// rounding mode), with half subnormals and overflow to infinity: llama.cpp stores its Q8_0 / Q8_1
// activation scales this way, and its dot products multiply by the stored half.
inline uint16_t floatToHalf(float x) {
  uint32_t f;
  std::memcpy(&f, &x, 4);
  const uint32_t sign = (f >> 16) & 0x8000;
  const uint32_t exp = (f >> 23) & 0xff, mant = f & 0x7fffff;
  if (exp == 0xff) return uint16_t(sign | 0x7c00 | (mant ? 0x200 : 0));
  const int e = int(exp) - 127 + 15;
  if (e >= 31) return uint16_t(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return uint16_t(sign);
    const uint32_t m = mant | 0x800000;
    const uint32_t shift = uint32_t(14 - e);
    const uint32_t half = 1u << (shift - 1), rest = m & ((1u << shift) - 1);
    uint32_t h = m >> shift;
    if (rest > half || (rest == half && (h & 1))) h++;
    return uint16_t(sign | h);
  }
  uint32_t h = (uint32_t(e) << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
  return uint16_t(sign | h);
}

// f rounded to the nearest half, as a float.
inline float roundToHalf(float f) { return halfToFloat(floatToHalf(f)); }

inline float bf16ToFloat(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace vserve
