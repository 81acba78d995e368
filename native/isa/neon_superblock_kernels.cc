// NEON Q2_K / Q3_K / Q5_K / IQ4_XS matmuls on KQuantRows activations. A weight super-block is decoded
// once per tile of activation rows into signed bytes in value order (every format fits: Q2_K 0..3,
// Q3_K -4..3, Q5_K 0..31, IQ4_XS table values -127..113) and f32 factors per 16 values; each row then
// takes widening int8 multiplies reduced to one sum per 16 values, four sums at a time scaled in f32,
// and the mins (Q2_K, Q5_K) through the activation sums.
#include <arm_neon.h>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "../superblock_unpack.h"
#include "kquant_blocks.h"

namespace vserve {
namespace {

constexpr size_t kSuperBlockTile = 4;  // activation rows per pass over a weight row

inline int32x4_t dot16(int8x16_t a, const int8_t* b) {
  const int8x16_t bv = vld1q_s8(b);
  const int32x4_t acc = vpaddlq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(bv)));
  return vpadalq_s16(acc, vmull_high_s8(a, bv));
}

// Bytes shifted right by a run-time count (vshrq_n_u8 needs a constant).
inline uint8x16_t shiftRight(uint8x16_t v, int n) { return vshlq_u8(v, vdupq_n_s8(int8_t(-n))); }

// Four f32 vectors from 16 bytes (unsigned or signed), times `factor`.
inline void floatsU8(uint8x16_t v, float factor, float32x4_t* out) {
  const uint16x8_t lo = vmovl_u8(vget_low_u8(v)), hi = vmovl_high_u8(v);
  out[0] = vmulq_n_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))), factor);
  out[1] = vmulq_n_f32(vcvtq_f32_u32(vmovl_high_u16(lo)), factor);
  out[2] = vmulq_n_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi))), factor);
  out[3] = vmulq_n_f32(vcvtq_f32_u32(vmovl_high_u16(hi)), factor);
}
inline void floatsS8(int8x16_t v, float factor, float32x4_t* out) {
  const int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_high_s8(v);
  out[0] = vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), factor);
  out[1] = vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), factor);
  out[2] = vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), factor);
  out[3] = vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), factor);
}

// A decoded super-block: quants in value order and, per 16 values g, scale = d * scale_g and
// offset = -dmin * min_g (vector k holds groups 4k..4k+3).
struct DecodedSuperBlock {
  int8x16_t q[16];
  float32x4_t scale[4];
  float32x4_t offset[4];

  float dot(const KQuantRows& x, size_t row, size_t b) const {
    const int8_t* xq = x.q + row * x.cols + b * kQKSuper;
    const float* xd = x.d + row * (x.cols / kQKBlock) + b * 8;
    const float* xs = x.s + row * (x.cols / 16) + b * 16;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int k = 0; k < 4; k++) {
      const int8_t* xk = xq + 64 * k;
      const int32x4_t sums = vpaddq_s32(vpaddq_s32(dot16(q[4 * k], xk), dot16(q[4 * k + 1], xk + 16)),
                                        vpaddq_s32(dot16(q[4 * k + 2], xk + 32), dot16(q[4 * k + 3], xk + 48)));
      const float32x2_t pair = vld1_f32(xd + 2 * k);  // the activation blocks of groups 4k..4k+3: 2k, 2k, 2k+1, 2k+1
      const float32x4_t both = vcombine_f32(pair, pair);
      acc = vfmaq_f32(acc, vcvtq_f32_s32(sums), vmulq_f32(scale[k], vzip1q_f32(both, both)));
      acc = vfmaq_f32(acc, offset[k], vld1q_f32(xs + 4 * k));
    }
    return vaddvq_f32(acc);
  }
};

struct Q2_KBlock : DecodedSuperBlock {
  static constexpr int kBytes = kQ2_KBytes;
  void unpack(const uint8_t* blk) {
    // Value 128h + 32s + l is bits 2s..2s+1 of quant byte 32h + l; group 8h + 2s + l / 16.
    const uint8x16_t three = vdupq_n_u8(3);
    for (int h = 0; h < 2; h++) {
      const uint8x16_t b0 = vld1q_u8(blk + kQ2_KQuantsAt + 32 * h), b1 = vld1q_u8(blk + kQ2_KQuantsAt + 32 * h + 16);
      for (int s = 0; s < 4; s++) {
        q[8 * h + 2 * s] = vreinterpretq_s8_u8(vandq_u8(shiftRight(b0, 2 * s), three));
        q[8 * h + 2 * s + 1] = vreinterpretq_s8_u8(vandq_u8(shiftRight(b1, 2 * s), three));
      }
    }
    const uint8x16_t packed = vld1q_u8(blk);
    floatsU8(vandq_u8(packed, vdupq_n_u8(0x0f)), halfToFloat(loadU16(blk + kQ2_KDAt)), scale);
    floatsU8(vshrq_n_u8(packed, 4), -halfToFloat(loadU16(blk + kQ2_KDAt + 2)), offset);
  }
};

struct Q3_KBlock : DecodedSuperBlock {
  static constexpr int kBytes = kQ3_KBytes;
  void unpack(const uint8_t* blk) {
    // As Q2_K, minus 4 unless the value's hmask bit (bit 4h + s of hmask byte l) is set.
    const uint8x16_t three = vdupq_n_u8(3), one = vdupq_n_u8(1);
    const uint8x16_t hm0 = vld1q_u8(blk), hm1 = vld1q_u8(blk + 16);
    const int8x16_t four = vdupq_n_s8(4);
    for (int h = 0; h < 2; h++) {
      const uint8x16_t b0 = vld1q_u8(blk + kQ3_KQuantsAt + 32 * h), b1 = vld1q_u8(blk + kQ3_KQuantsAt + 32 * h + 16);
      for (int s = 0; s < 4; s++) {
        const uint8x16_t u0 = vorrq_u8(vandq_u8(shiftRight(b0, 2 * s), three), vshlq_n_u8(vandq_u8(shiftRight(hm0, 4 * h + s), one), 2));
        const uint8x16_t u1 = vorrq_u8(vandq_u8(shiftRight(b1, 2 * s), three), vshlq_n_u8(vandq_u8(shiftRight(hm1, 4 * h + s), one), 2));
        q[8 * h + 2 * s] = vsubq_s8(vreinterpretq_s8_u8(u0), four);
        q[8 * h + 2 * s + 1] = vsubq_s8(vreinterpretq_s8_u8(u1), four);
      }
    }
    uint8_t biased[16];
    unpackQ3_KScales(blk + kQ3_KScalesAt, biased);
    floatsS8(vsubq_s8(vreinterpretq_s8_u8(vld1q_u8(biased)), vdupq_n_s8(32)), halfToFloat(loadU16(blk + kQ3_KDAt)), scale);
    for (int k = 0; k < 4; k++) offset[k] = vdupq_n_f32(0.0f);
  }
};

struct Q5_KBlock : DecodedSuperBlock {
  static constexpr int kBytes = kQ5_KBytes;
  void unpack(const uint8_t* blk) {
    // Chunk p (32 bytes): values 64p + l (low nibble, qh bit 2p) and 64p + 32 + l (high nibble, bit 2p + 1).
    const uint8x16_t low = vdupq_n_u8(0x0f), one = vdupq_n_u8(1);
    const uint8x16_t qh0 = vld1q_u8(blk + kQ5_KHighAt), qh1 = vld1q_u8(blk + kQ5_KHighAt + 16);
    for (int p = 0; p < 4; p++) {
      const uint8x16_t b0 = vld1q_u8(blk + kQ5_KQuantsAt + 32 * p), b1 = vld1q_u8(blk + kQ5_KQuantsAt + 32 * p + 16);
      const uint8x16_t h00 = vshlq_n_u8(vandq_u8(shiftRight(qh0, 2 * p), one), 4), h01 = vshlq_n_u8(vandq_u8(shiftRight(qh1, 2 * p), one), 4);
      const uint8x16_t h10 = vshlq_n_u8(vandq_u8(shiftRight(qh0, 2 * p + 1), one), 4), h11 = vshlq_n_u8(vandq_u8(shiftRight(qh1, 2 * p + 1), one), 4);
      q[4 * p] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(b0, low), h00));
      q[4 * p + 1] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(b1, low), h01));
      q[4 * p + 2] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(b0, 4), h10));
      q[4 * p + 3] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(b1, 4), h11));
    }
    uint64_t scales, mins;
    unpackQ4_KScales(blk + kQ5_KScalesAt, &scales, &mins);
    const uint8x8_t s8 = vcreate_u8(scales), m8 = vcreate_u8(mins);
    floatsU8(vcombine_u8(vzip1_u8(s8, s8), vzip2_u8(s8, s8)), halfToFloat(loadU16(blk)), scale);  // one per 32: two groups each
    floatsU8(vcombine_u8(vzip1_u8(m8, m8), vzip2_u8(m8, m8)), -halfToFloat(loadU16(blk + 2)), offset);
  }
};

struct IQ4_XSBlock : DecodedSuperBlock {
  static constexpr int kBytes = kIQ4_XSBytes;
  void unpack(const uint8_t* blk) {
    // Sub-block j's 16 bytes: values 32j..32j+15 in the low nibbles, 32j+16..32j+31 in the high ones.
    const int8x16_t table = vld1q_s8(kIQ4_NLValues);
    const uint8x16_t low = vdupq_n_u8(0x0f);
    int8_t scales[16];
    for (int j = 0; j < 8; j++) {
      const uint8x16_t bytes = vld1q_u8(blk + kIQ4_XSQuantsAt + 16 * j);
      q[2 * j] = vqtbl1q_s8(table, vandq_u8(bytes, low));
      q[2 * j + 1] = vqtbl1q_s8(table, vshrq_n_u8(bytes, 4));
      scales[2 * j] = scales[2 * j + 1] = int8_t(iq4xsScale(blk, j) - 32);
    }
    floatsS8(vld1q_s8(scales), halfToFloat(loadU16(blk)), scale);
    for (int k = 0; k < 4; k++) offset[k] = vdupq_n_f32(0.0f);
  }
};

void matmulQ2_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulKQuantRows<Q2_KBlock, kSuperBlockTile>(x, w, range);
}
void matmulQ3_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulKQuantRows<Q3_KBlock, kSuperBlockTile>(x, w, range);
}
void matmulQ5_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulKQuantRows<Q5_KBlock, kSuperBlockTile>(x, w, range);
}
void matmulIQ4_XS(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulKQuantRows<IQ4_XSBlock, kSuperBlockTile>(x, w, range);
}

}  // namespace

const SuperBlockKernels* neonSuperBlockKernels() {
  static const SuperBlockKernels kKernels{matmulQ2_K, matmulQ3_K, matmulQ5_K, matmulIQ4_XS, nullptr, nullptr, nullptr, nullptr};
  return &kKernels;
}

}  // namespace vserve
