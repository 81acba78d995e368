// NEON Q4_1 / Q5_0 / Q5_1 / IQ4_NL matmuls (Block32Kernels), baseline arm64 instructions only.
//
// Every value of these types fits a signed byte (Q4_1 0..15, Q5_0 -16..15, Q5_1 0..31, IQ4_NL the grid
// values), so a weight block decodes to two int8x16 vectors (elements 0..15 and 16..31) and dots with
// the signed activations through the widening multiplies of blockDot. Each block is decoded once per
// tile of activation rows. Q4_1 / Q5_1 add m * s_x per block (QuantizedRows::s).
#include <arm_neon.h>

#include <cstring>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "neon_blocks.h"

namespace vserve {
namespace {

constexpr size_t kActivationTile = 4;  // activation rows per pass over a weight row

// Elements 0..15 (low nibbles) and 16..31 (high nibbles) of 16 quant bytes.
inline void nibbles(const uint8_t* qs, uint8x16_t* lo, uint8x16_t* hi) {
  const uint8x16_t packed = vld1q_u8(qs);
  *lo = vandq_u8(packed, vdupq_n_u8(0x0f));
  *hi = vshrq_n_u8(packed, 4);
}

// 16 in byte j where bit `first + j` of the Q5 high-bit word is set, for j < 16.
inline uint8x16_t fifthBits(uint32_t qh, int first) {
  static const uint8_t kBits[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t spread = vcombine_u8(vdup_n_u8(uint8_t(qh >> first)), vdup_n_u8(uint8_t(qh >> (first + 8))));
  return vandq_u8(vtstq_u8(spread, vld1q_u8(kBits)), vdupq_n_u8(16));
}

inline uint32_t loadWord(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

struct Q4_1Format {
  static constexpr int kBytes = kQ4_1Bytes;
  static constexpr bool kHasMin = true;
  static void quants(const uint8_t* blk, int8x16_t* lo, int8x16_t* hi) {
    uint8x16_t a, b;
    nibbles(blk + 4, &a, &b);
    *lo = vreinterpretq_s8_u8(a);
    *hi = vreinterpretq_s8_u8(b);
  }
};

struct Q5_0Format {
  static constexpr int kBytes = kQ5_0Bytes;
  static constexpr bool kHasMin = false;
  static void quants(const uint8_t* blk, int8x16_t* lo, int8x16_t* hi) {
    uint8x16_t a, b;
    nibbles(blk + 6, &a, &b);
    const uint32_t qh = loadWord(blk + 2);
    const int8x16_t sixteen = vdupq_n_s8(16);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(a, fifthBits(qh, 0))), sixteen);
    *hi = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(b, fifthBits(qh, 16))), sixteen);
  }
};

struct Q5_1Format {
  static constexpr int kBytes = kQ5_1Bytes;
  static constexpr bool kHasMin = true;
  static void quants(const uint8_t* blk, int8x16_t* lo, int8x16_t* hi) {
    uint8x16_t a, b;
    nibbles(blk + 8, &a, &b);
    const uint32_t qh = loadWord(blk + 4);
    *lo = vreinterpretq_s8_u8(vorrq_u8(a, fifthBits(qh, 0)));
    *hi = vreinterpretq_s8_u8(vorrq_u8(b, fifthBits(qh, 16)));
  }
};

struct IQ4_NLFormat {
  static constexpr int kBytes = kIQ4_NLBytes;
  static constexpr bool kHasMin = false;
  static void quants(const uint8_t* blk, int8x16_t* lo, int8x16_t* hi) {
    uint8x16_t a, b;
    nibbles(blk + 2, &a, &b);
    const int8x16_t grid = vld1q_s8(kIQ4_NLValues);
    *lo = vqtbl1q_s8(grid, a);
    *hi = vqtbl1q_s8(grid, b);
  }
};

template <class F>
void matmulBlock32(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  const size_t blocks = x.cols / kQKBlock;
  const size_t rowBytes = blocks * F::kBytes;
  const uint8x16_t flip = vdupq_n_u8(0x80);
  for (size_t r = range.rowBegin; r < range.rowEnd; r++) {
    const uint8_t* wr = w + r * rowBytes;
    for (size_t i0 = 0; i0 < x.rows; i0 += kActivationTile) {
      const size_t tile = x.rows - i0 < kActivationTile ? x.rows - i0 : kActivationTile;
      float acc[kActivationTile] = {};
      for (size_t b = 0; b < blocks; b++) {
        const uint8_t* blk = wr + b * F::kBytes;
        int8x16_t w0, w1;
        F::quants(blk, &w0, &w1);
        const float d = halfToFloat(loadU16(blk));
        const float m = F::kHasMin ? halfToFloat(loadU16(blk + 2)) : 0.0f;
        for (size_t i = 0; i < tile; i++) {
          const uint8_t* xq = x.q + (i0 + i) * x.cols + b * kQKBlock;
          const int8x16_t x0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(xq), flip));
          const int8x16_t x1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(xq + 16), flip));
          const float xd = x.d[(i0 + i) * blocks + b];
          acc[i] += (d * xd) * float(blockDot(w0, w1, x0, x1));
          if constexpr (F::kHasMin) acc[i] += m * x.s[(i0 + i) * blocks + b];
        }
      }
      for (size_t i = 0; i < tile; i++) range.out[(i0 + i) * range.outStride + r] = acc[i];
    }
  }
}

}  // namespace

const Block32Kernels* neonBlock32Kernels() {
  static const Block32Kernels kKernels{matmulBlock32<Q4_1Format>, matmulBlock32<Q5_0Format>, matmulBlock32<Q5_1Format>,
                                       matmulBlock32<IQ4_NLFormat>, nullptr, nullptr, nullptr, nullptr};
  return &kKernels;
}

}  // namespace vserve
