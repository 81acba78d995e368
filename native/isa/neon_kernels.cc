// arm64 Advanced SIMD (NEON) kernels. NEON is part of the arm64 baseline, so this file needs no
// extra flags and no run-time check; it uses only baseline instructions (no dot-product extension).
#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "../ggml_types.h"
#include "../gelu.h"
#include "../kernel_set.h"
#include "kquant_blocks.h"
#include "neon_blocks.h"
#include "add_rows.h"
#include "softmax_tile.h"

namespace vserve {
namespace {

void quantizeRows(const float* x, size_t rows, size_t cols, uint8_t* q, float* d, float* s) {
  const size_t blocks = rows * (cols / kQKBlock);
  for (size_t b = 0; b < blocks; b++, x += kQKBlock, q += kQKBlock) {
    float32x4_t v[8];
    float32x4_t amax = vdupq_n_f32(0.0f);
    for (int k = 0; k < 8; k++) {
      v[k] = vld1q_f32(x + 4 * k);
      amax = vmaxq_f32(amax, vabsq_f32(v[k]));
    }
    const float m = vmaxvq_f32(amax);
    const float scale = m / 127.0f;
    d[b] = roundToHalf(scale);
    const float inv = m > 0.0f ? 127.0f / m : 0.0f;
    int32x4_t sums = vdupq_n_s32(0);
    for (int k = 0; k < 8; k++) sums = vaddq_s32(sums, vcvtnq_s32_f32(vmulq_n_f32(v[k], inv)));
    s[b] = roundToHalf(scale * float(vaddvq_s32(sums)));
    for (int k = 0; k < 8; k += 4) {
      int16x8_t lo = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[k], inv))),
                                  vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[k + 1], inv))));
      int16x8_t hi = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[k + 2], inv))),
                                  vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[k + 3], inv))));
      const int8x16_t packed = vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
      vst1q_u8(q + 4 * k, veorq_u8(vreinterpretq_u8_s8(packed), vdupq_n_u8(0x80)));
    }
  }
}

void quantizeSuperRows(const float* x, size_t rows, size_t cols, int8_t* q, float* d, float* s) {
  constexpr int kVecs = kQKSuper / 4;
  const size_t supers = rows * (cols / kQKSuper);
  for (size_t b = 0; b < supers; b++, x += kQKSuper, q += kQKSuper, d += kQKSuper / kQKBlock, s += kQKSuper / 16) {
    float32x4_t amaxv = vdupq_n_f32(0.0f);
    for (int k = 0; k < kVecs; k++) amaxv = vmaxq_f32(amaxv, vabsq_f32(vld1q_f32(x + 4 * k)));
    const float amax = vmaxvq_f32(amaxv);
    float iscale = 0.0f, scale = 0.0f;
    if (amax > 0.0f) {
      int at = 0;  // the sign comes from the first value of largest magnitude
      while (std::fabs(x[at]) != amax) at++;
      iscale = -127.0f / x[at];
      scale = 1.0f / iscale;
    }
    for (int k = 0; k < kVecs; k += 4) {
      int32x4_t i32[4];
      for (int j = 0; j < 4; j++) i32[j] = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 4 * (k + j)), iscale));
      s[k / 4] = scale * float(vaddvq_s32(vaddq_s32(vaddq_s32(i32[0], i32[1]), vaddq_s32(i32[2], i32[3]))));
      const int16x8_t lo = vcombine_s16(vqmovn_s32(i32[0]), vqmovn_s32(i32[1]));
      const int16x8_t hi = vcombine_s16(vqmovn_s32(i32[2]), vqmovn_s32(i32[3]));
      vst1q_s8(q + 4 * k, vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)));
    }
    for (int k = 0; k < kQKSuper / kQKBlock; k++) d[k] = scale;
  }
}

inline int8x16_t signedActivations(const uint8_t* u) {
  return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(u), vdupq_n_u8(0x80)));
}

struct Q8_0Block {
  static constexpr int kBytes = kQ8_0Bytes;
  static void load(const uint8_t* blk, int8x16_t* lo, int8x16_t* hi) {
    *lo = vld1q_s8(reinterpret_cast<const int8_t*>(blk + 2));
    *hi = vld1q_s8(reinterpret_cast<const int8_t*>(blk + 18));
  }
};

struct Q4_0Block {
  static constexpr int kBytes = kQ4_0Bytes;
  static void load(const uint8_t* blk, int8x16_t* lo, int8x16_t* hi) {
    const uint8x16_t packed = vld1q_u8(blk + 2);
    const int8x16_t eight = vdupq_n_s8(8);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(packed, vdupq_n_u8(0x0f))), eight);
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), eight);
  }
};

template <class F>
void matmulQuant(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  const size_t blocks = x.cols / kQKBlock;
  const size_t rowBytes = blocks * F::kBytes;
  for (size_t r = range.rowBegin; r < range.rowEnd; r++) {
    const uint8_t* wr = w + r * rowBytes;
    for (size_t i = 0; i < x.rows; i++) {
      const uint8_t* xq = x.q + i * x.cols;
      const float* xd = x.d + i * blocks;
      float acc = 0.0f;
      for (size_t b = 0; b < blocks; b++) {
        const uint8_t* blk = wr + b * F::kBytes;
        int8x16_t w0, w1;
        F::load(blk, &w0, &w1);
        const int32_t dot = blockDot(w0, w1, signedActivations(xq + b * kQKBlock), signedActivations(xq + b * kQKBlock + 16));
        acc += halfToFloat(loadU16(blk)) * xd[b] * float(dot);
      }
      range.out[i * range.outStride + r] = acc;
    }
  }
}

void matmulQ8_0(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) { matmulQuant<Q8_0Block>(x, w, range); }
void matmulQ4_0(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) { matmulQuant<Q4_0Block>(x, w, range); }

// ---- K-quants: a weight super-block decoded to bytes once per tile of activation rows ----
// Q4_K (0..15) and Q6_K (0..63, the stored value + 32) quants fit signed bytes, so the dots are the
// widening multiplies of blockDot, reduced per sub-block; the per-sub-block factors are applied in f32
// as in the portable kernel (the Q4_K mins and the Q6_K -32 through the activation sums).

constexpr size_t kKQuantTile = 4;  // activation rows per pass over a weight row

inline int32x4_t dot16(int8x16_t a, const int8_t* b, int32x4_t acc) {
  const int8x16_t bv = vld1q_s8(b);
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(bv)));
  return vpadalq_s16(acc, vmull_high_s8(a, bv));
}

struct Q4_KBlock : Q4_KFactors {
  static constexpr int kBytes = kQ4_KBytes;
  int8x16_t q[16];  // values 16k..16k+15

  void unpack(const uint8_t* blk) {
    unpackFactors(blk);
    // Bytes 32p..32p+31 hold values 64p..64p+31 (low nibbles) and 64p+32..64p+63 (high nibbles).
    const uint8x16_t low = vdupq_n_u8(0x0f);
    for (int p = 0; p < 4; p++) {
      const uint8x16_t b0 = vld1q_u8(blk + kQ4_KQuantsAt + 32 * p), b1 = vld1q_u8(blk + kQ4_KQuantsAt + 32 * p + 16);
      q[4 * p] = vreinterpretq_s8_u8(vandq_u8(b0, low));
      q[4 * p + 1] = vreinterpretq_s8_u8(vandq_u8(b1, low));
      q[4 * p + 2] = vreinterpretq_s8_u8(vshrq_n_u8(b0, 4));
      q[4 * p + 3] = vreinterpretq_s8_u8(vshrq_n_u8(b1, 4));
    }
  }

  float dot(const KQuantRows& x, size_t row, size_t b) const {
    return combine(x, row, b, [&](int j, const int8_t* xq) {
      return vaddvq_s32(dot16(q[2 * j + 1], xq + 16, dot16(q[2 * j], xq, vdupq_n_s32(0))));
    });
  }
};

struct Q6_KBlock : Q6_KFactors {
  static constexpr int kBytes = kQ6_KBytes;
  int8x16_t q[16];  // values 16k..16k+15, 0..63

  void unpack(const uint8_t* blk) {
    // Of each 128 values, 0-31 take qh bits 0-1 and ql bytes 0-31's low nibbles, 32-63 bits 2-3 and
    // bytes 32-63's low nibbles, 64-95 bits 4-5 and bytes 0-31's high nibbles, 96-127 bits 6-7 and
    // bytes 32-63's high nibbles.
    const uint8x16_t low = vdupq_n_u8(0x0f), high = vdupq_n_u8(0x30);
    for (int half = 0; half < 2; half++) {
      const uint8_t* ql = blk + 64 * half;
      const uint8_t* qhp = blk + kQ6_KHighAt + 32 * half;
      for (int k = 0; k < 2; k++) {  // values 16k..16k+15 of each 32
        const uint8x16_t a = vld1q_u8(ql + 16 * k), c = vld1q_u8(ql + 32 + 16 * k), qh = vld1q_u8(qhp + 16 * k);
        int8x16_t* out = q + 8 * half + k;
        out[0] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(a, low), vandq_u8(vshlq_n_u8(qh, 4), high)));
        out[2] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(c, low), vandq_u8(vshlq_n_u8(qh, 2), high)));
        out[4] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(a, 4), vandq_u8(qh, high)));
        out[6] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(c, 4), vandq_u8(vshrq_n_u8(qh, 2), high)));
      }
    }
    unpackFactors(blk);
  }

  float dot(const KQuantRows& x, size_t row, size_t b) const {
    return combine(x, row, b, [&](int j, const int8_t* xq) { return vaddvq_s32(dot16(q[j], xq, vdupq_n_s32(0))); });
  }
};


void matmulQ4_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulKQuantRows<Q4_KBlock, kKQuantTile>(x, w, range); }
void matmulQ6_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulKQuantRows<Q6_KBlock, kKQuantTile>(x, w, range); }

struct F32Loader {
  using T = float;
  static float32x4_t load(const float* p) { return vld1q_f32(p); }
  static float one(const float* p) { return *p; }
};
struct F16Loader {
  using T = uint16_t;
  static float32x4_t load(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  static float one(const uint16_t* p) { return halfToFloat(*p); }
};
struct BF16Loader {
  using T = uint16_t;
  static float32x4_t load(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
  static float one(const uint16_t* p) { return bf16ToFloat(*p); }
};

template <class L>
void matmulFloat(const FloatRows& x, const typename L::T* w, const MatmulRange& range) {
  const size_t body = x.cols & ~size_t(3);
  for (size_t r = range.rowBegin; r < range.rowEnd; r++) {
    const typename L::T* wr = w + r * x.cols;
    for (size_t i = 0; i < x.rows; i++) {
      const float* xr = x.x + i * x.cols;
      float32x4_t acc = vdupq_n_f32(0.0f);
      for (size_t c = 0; c < body; c += 4) acc = vfmaq_f32(acc, L::load(wr + c), vld1q_f32(xr + c));
      float sum = vaddvq_f32(acc);
      for (size_t c = body; c < x.cols; c++) sum += L::one(wr + c) * xr[c];
      range.out[i * range.outStride + r] = sum;
    }
  }
}

void matmulF32(const FloatRows& x, const float* w, const MatmulRange& range) { matmulFloat<F32Loader>(x, w, range); }
void matmulF16(const FloatRows& x, const uint16_t* w, const MatmulRange& range) { matmulFloat<F16Loader>(x, w, range); }
void matmulBF16(const FloatRows& x, const uint16_t* w, const MatmulRange& range) { matmulFloat<BF16Loader>(x, w, range); }

float dot(const float* a, const float* b, size_t n) {
  float32x4_t acc = vdupq_n_f32(0.0f);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) acc = vfmaq_f32(acc, vld1q_f32(a + i), vld1q_f32(b + i));
  float sum = vaddvq_f32(acc);
  for (; i < n; i++) sum += a[i] * b[i];
  return sum;
}

void axpy(float* y, const float* x, float a, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
  for (; i < n; i++) y[i] += a * x[i];
}

void scale(float* y, float a, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), a));
  for (; i < n; i++) y[i] *= a;
}

uint64_t readAll(const uint8_t* p, size_t bytes) {
  uint8x16_t a0 = vdupq_n_u8(0), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 64 <= bytes; i += 64) {
    a0 = veorq_u8(a0, vld1q_u8(p + i));
    a1 = veorq_u8(a1, vld1q_u8(p + i + 16));
    a2 = veorq_u8(a2, vld1q_u8(p + i + 32));
    a3 = veorq_u8(a3, vld1q_u8(p + i + 48));
  }
  const uint64x2_t all = vreinterpretq_u64_u8(veorq_u8(veorq_u8(a0, a1), veorq_u8(a2, a3)));
  uint64_t acc = vgetq_lane_u64(all, 0) ^ vgetq_lane_u64(all, 1);
  for (; i < bytes; i++) acc ^= p[i];
  return acc;
}

void softmaxTile(float* scores, size_t heads, size_t stride, size_t count, float* max, float* sum, float* correction) {
  softmaxTileScalar(scores, heads, stride, count, max, sum, correction);
}

float expWeights(const float* x, size_t count, float shift, float scale, float floor, float* out) {
  return expWeightsScalar(x, count, shift, scale, floor, out);
}

void geglu(const float* table, float* out, const float* gate, const float* up, size_t len) { gegluScalar(table, out, gate, up, len); }

void addRows(float* y, const float* x, size_t stride, const float* a, size_t rows, size_t n) {
  addRowsGeneric(y, x, stride, a, rows, n);
}

void swiglu(float* out, const float* gate, const float* up, size_t len) { swigluScalar(out, gate, up, len); }

}  // namespace

VSERVE_DEFINE_KERNEL_SET(neonKernels, "neon", matmulQ4_K, matmulQ6_K, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                         neonKVTiles(), neonSuperBlockKernels(), neonBlock32Kernels())

}  // namespace vserve
