// K-quant super-block pieces shared by the ISA kernel files. Everything here has internal linkage
// (an anonymous namespace), so each kernel file gets its own copy compiled with its own ISA flags and
// the linker can never hand the portable code a copy built for AVX-512.
//
// Q4_K (144 bytes, 256 values in 8 sub-blocks of 32): f16 d, f16 dmin, 12 bytes of 6-bit scales and
// mins, 128 bytes of nibbles. Byte l of quant chunk p (32 bytes, p = 0..3) holds value 64p + l in its
// low nibble and value 64p + 32 + l in its high nibble; value = d * scale_j * q - dmin * min_j.
// Q6_K (210 bytes, 256 values in 16 sub-blocks of 16): ql[128] low 4 bits, qh[64] high 2 bits,
// int8 scales[16], f16 d; value = d * scale_j * (q - 32). See dequantize.cc for the bit layout.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../ggml_types.h"
#include "../kernel_set.h"

namespace vserve {
namespace {

constexpr int kQ4_KScalesAt = 4;
constexpr int kQ4_KQuantsAt = 16;
constexpr int kQ6_KHighAt = 128;
constexpr int kQ6_KScalesAt = 192;
constexpr int kQ6_KDAt = 208;

// The eight 6-bit scales and eight 6-bit mins of a Q4_K super-block, one per byte (byte j of the
// result = sub-block j). Packing: bytes 0-3 hold scales 0-3 and bytes 4-7 mins 0-3 in their low 6
// bits, and in their top 2 bits the high bits of scales / mins 4-7, whose low 4 bits are the nibbles
// of bytes 8-11 (scale low, min high). Whole 32-bit words at once; assumes little-endian (x86, arm64).
inline void unpackQ4_KScales(const uint8_t* packed, uint64_t* scales, uint64_t* mins) {
  uint32_t a, b, c;
  std::memcpy(&a, packed, 4);
  std::memcpy(&b, packed + 4, 4);
  std::memcpy(&c, packed + 8, 4);
  const uint32_t scaleHigh = (c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u);
  const uint32_t minHigh = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u);
  *scales = uint64_t(a & 0x3f3f3f3fu) | uint64_t(scaleHigh) << 32;
  *mins = uint64_t(b & 0x3f3f3f3fu) | uint64_t(minHigh) << 32;
}

// A Q4_K super-block's factors: d, dmin, and the scale and min of each of its eight sub-blocks.
struct Q4_KFactors {
  float d, dmin;
  uint8_t scale[8], min[8];

  void unpackFactors(const uint8_t* blk) {
    d = halfToFloat(loadU16(blk));
    dmin = halfToFloat(loadU16(blk + 2));
    uint64_t scales, mins;
    unpackQ4_KScales(blk + kQ4_KScalesAt, &scales, &mins);
    std::memcpy(scale, &scales, 8);
    std::memcpy(min, &mins, 8);
  }

  // The super-block's contribution to one activation row: sum_j d * scale_j * xd_j * dot_j
  // - dmin * min_j * xd_j * sum(xq_j), where subDot(j, xq) is the integer dot of sub-block j's 32
  // quants with the activation quants at xq (the ISA's part).
  template <class SubDot>
  float combine(const KQuantRows& x, size_t row, size_t b, SubDot&& subDot) const {
    const int8_t* xq = x.q + row * x.cols + b * kQKSuper;
    const float* xd = x.d + row * (x.cols / kQKBlock) + b * 8;
    const float* xs = x.s + row * (x.cols / 16) + b * 16;
    float scaled = 0.0f, offsets = 0.0f;
    for (int j = 0; j < 8; j++) {
      scaled += float(scale[j]) * xd[j] * float(subDot(j, xq + 32 * j));
      offsets += float(min[j]) * (xs[2 * j] + xs[2 * j + 1]);
    }
    return d * scaled - dmin * offsets;
  }
};

// A Q6_K super-block's factors: d and the scale of each of its sixteen sub-blocks.
struct Q6_KFactors {
  float d;
  int8_t scale[16];

  void unpackFactors(const uint8_t* blk) {
    std::memcpy(scale, blk + kQ6_KScalesAt, 16);
    d = halfToFloat(loadU16(blk + kQ6_KDAt));
  }

  // The super-block's contribution to one activation row: sum_j d * scale_j * (xd * dot_j - 32 * xd *
  // sum(xq_j)), where subDot(j, xq) is the integer dot of sub-block j's 16 quants (stored value + 32)
  // with the activation quants at xq (the ISA's part).
  template <class SubDot>
  float combine(const KQuantRows& x, size_t row, size_t b, SubDot&& subDot) const {
    const int8_t* xq = x.q + row * x.cols + b * kQKSuper;
    const float* xd = x.d + row * (x.cols / kQKBlock) + b * 8;
    const float* xs = x.s + row * (x.cols / 16) + b * 16;
    float sum = 0.0f;
    for (int j = 0; j < 16; j++) sum += float(scale[j]) * (xd[j / 2] * float(subDot(j, xq + 16 * j)) - 32.0f * xs[j]);
    return d * sum;
  }
};

// The row-layout K-quant matmul driver for ISAs whose Block (see the kernel files) does the arithmetic:
// Block::unpack turns one super-block into its quants and factors once per kKQuantTile activation rows,
// Block::dot gives that super-block's contribution to one activation row's output.
template <class Block, size_t kKQuantTile>
void matmulKQuantRows(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  const size_t supers = x.cols / kQKSuper;
  const size_t rowBytes = supers * Block::kBytes;
  Block blk;
  for (size_t r = range.rowBegin; r < range.rowEnd; r++) {
    for (size_t i0 = 0; i0 < x.rows; i0 += kKQuantTile) {
      const size_t count = x.rows - i0 < kKQuantTile ? x.rows - i0 : kKQuantTile;
      float acc[kKQuantTile] = {};
      for (size_t b = 0; b < supers; b++) {
        blk.unpack(w + r * rowBytes + b * Block::kBytes);
        for (size_t t = 0; t < count; t++) acc[t] += blk.dot(x, i0 + t, b);
      }
      for (size_t t = 0; t < count; t++) range.out[(i0 + t) * range.outStride + r] = acc[t];
    }
  }
}

}  // namespace
}  // namespace vserve
