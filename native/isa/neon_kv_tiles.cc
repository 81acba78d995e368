// arm64 Advanced SIMD attention tile kernels that read the KV formats in place (KVTileKernels,
// kv_format.h); baseline instructions only, like neon_kernels.cc. Plain loops: one position at a time,
// each row's block converted once and used by every head of the group.
//
// f16: 4 values at a time widened by fcvtl. q8_0 / q4_0 keys: integer dots of each block with the
// query's q8_0 block (QueryBlocks), scaled by key scale x query scale. q8_0 / q4_0 values: a block
// widened to 32 floats, added to each head's output with the weight times the block's scale.
#include <arm_neon.h>

#include <algorithm>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "../kv_format.h"
#include "neon_blocks.h"
#include "quant_tile_loops.h"
#include "tile_helpers.h"

namespace vserve {
namespace {

// Values i..i+3 of an f16 row.
inline float32x4_t halves4(const uint8_t* row, size_t i) {
  return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(row + 2 * i)));
}

inline float half(const uint8_t* p) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(loadU16(p)))), 0); }

// ---- f16 ----

template <int HC>
void scoreF16Heads(const float* q, const uint8_t* key, size_t d, float scale, float* scores, size_t stride) {
  float32x4_t acc[HC];
  for (int h = 0; h < HC; h++) acc[h] = vdupq_n_f32(0.0f);
  const size_t body = d & ~size_t(3);
  for (size_t i = 0; i < body; i += 4) {
    const float32x4_t k = halves4(key, i);
    for (int h = 0; h < HC; h++) acc[h] = vfmaq_f32(acc[h], k, vld1q_f32(q + h * d + i));
  }
  for (int h = 0; h < HC; h++) {
    float sum = vaddvq_f32(acc[h]);
    for (size_t i = body; i < d; i++) sum += q[h * d + i] * half(key + 2 * i);
    scores[h * stride] = sum * scale;
  }
}

void scoreF16(const float* q, const QueryBlocks&, size_t heads, const uint8_t* const* keys, size_t count, size_t d,
              float scale, float* scores, size_t stride, const NextBytes& next) {
  for (size_t p = 0; p < count; p++) {
    if (p < next.count) prefetchLines(reinterpret_cast<const uint16_t*>(next.rows[p]), 0, d);
    for (size_t h0 = 0; h0 < heads; h0 += 8) {
      withHeadCount<8>(heads - h0, [&](auto hc) {
        scoreF16Heads<decltype(hc)::value>(q + h0 * d, keys[p], d, scale, scores + h0 * stride + p, stride);
      });
    }
  }
}

// HC heads' outputs for dims i..i+3, in registers across the tile; prefetches the next tile's
// counterpart of each line it starts (next[p], p < nextCount).
template <int HC>
void accumulateF16Heads(float* out, size_t d, size_t i, const uint8_t* const* values, const float* weights, size_t stride,
                        size_t count, const uint8_t* const* next, size_t nextCount) {
  float32x4_t o[HC];
  for (int h = 0; h < HC; h++) o[h] = vld1q_f32(out + h * d + i);
  if (i % 32 != 0) nextCount = 0;  // 32 halves to a 64-byte line
  for (size_t p = 0; p < count; p++) {
    if (p < nextCount) prefetchLine(next[p] + 2 * i);
    const float32x4_t v = halves4(values[p], i);
    for (int h = 0; h < HC; h++) o[h] = vfmaq_n_f32(o[h], v, weights[h * stride + p]);
  }
  for (int h = 0; h < HC; h++) vst1q_f32(out + h * d + i, o[h]);
}

void accumulateF16(float* out, size_t heads, const uint8_t* const* values, const float* weights, size_t stride, size_t count,
                   size_t d, const NextBytes& next) {
  const size_t body = d & ~size_t(3);
  for (size_t h0 = 0; h0 < heads; h0 += 8) {
    for (size_t i = 0; i < body; i += 4) {
      withHeadCount<8>(heads - h0, [&](auto hc) {
        accumulateF16Heads<decltype(hc)::value>(out + h0 * d, d, i, values, weights + h0 * stride, stride, count, next.rows,
                                                h0 == 0 ? next.count : 0);
      });
    }
  }
  for (size_t h = 0; h < heads; h++) {
    for (size_t p = 0; p < count; p++) {
      for (size_t i = body; i < d; i++) out[h * d + i] += weights[h * stride + p] * half(values[p] + 2 * i);
    }
  }
}

// ---- q8_0 / q4_0 ----

// A block's 32 quants as signed values (q8_0 as stored, q4_0 nibbles less 8): lo = values 0..15.
struct Q8_0Format {
  static constexpr size_t kBytes = kQ8_0Bytes;
  static void quants(const uint8_t* blk, int8x16_t& lo, int8x16_t& hi) {
    lo = vreinterpretq_s8_u8(vld1q_u8(blk + 2));
    hi = vreinterpretq_s8_u8(vld1q_u8(blk + 18));
  }
};

struct Q4_0Format {
  static constexpr size_t kBytes = kQ4_0Bytes;
  static void quants(const uint8_t* blk, int8x16_t& lo, int8x16_t& hi) {
    const uint8x16_t packed = vld1q_u8(blk + 2);
    const int8x16_t eight = vdupq_n_s8(8);
    lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(packed, vdupq_n_u8(0x0f))), eight);
    hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), eight);
  }
};

template <class F>
void prefetchBlocks(const uint8_t* row, size_t d) {
  for (size_t b = 0; b < d / kQKBlock; b++) prefetchBlock(row + b * F::kBytes, F::kBytes);
}

template <int HC, class F>
void quantScoreHeads(const QueryBlocks& qb, size_t d, const uint8_t* key, float scale, float* scores, size_t stride) {
  const size_t blocks = d / kQKBlock;
  float acc[HC] = {};
  for (size_t b = 0; b < blocks; b++) {
    const uint8_t* blk = key + b * F::kBytes;
    int8x16_t k0, k1;
    F::quants(blk, k0, k1);
    const float keyScale = half(blk);
    for (int h = 0; h < HC; h++) {
      const int8_t* qh = qb.q + h * d + b * kQKBlock;
      const int32_t dot = blockDot(k0, k1, vld1q_s8(qh), vld1q_s8(qh + 16));
      acc[h] += float(dot) * (keyScale * qb.s[h * blocks + b]);
    }
  }
  for (int h = 0; h < HC; h++) scores[h * stride] = acc[h] * scale;
}

template <class F>
void scoreQuant(const float*, const QueryBlocks& qb, size_t heads, const uint8_t* const* keys, size_t count, size_t d,
                float scale, float* scores, size_t stride, const NextBytes& next) {
  forKeyGroups<1, 8>(qb, heads, d, keys, count, scores, stride, next,
                     [&](auto hc, const QueryBlocks& chunk, const uint8_t* const* rows, size_t, float* at,
                         const uint8_t* const* nextRows, size_t nextCount) {
                       if (nextCount != 0) prefetchBlocks<F>(nextRows[0], d);
                       quantScoreHeads<decltype(hc)::value, F>(chunk, d, rows[0], scale, at, stride);
                     });
}

// 16 signed bytes as 4 x 4 floats.
inline void widen(int8x16_t v, float32x4_t* out) {
  const int16x8_t a = vmovl_s8(vget_low_s8(v)), b = vmovl_high_s8(v);
  out[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(a)));
  out[1] = vcvtq_f32_s32(vmovl_high_s16(a));
  out[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(b)));
  out[3] = vcvtq_f32_s32(vmovl_high_s16(b));
}

template <class F>
void accumulateQuant(float* out, size_t heads, const uint8_t* const* values, const float* weights, size_t stride, size_t count,
                     size_t d, const NextBytes& next) {
  const size_t blocks = d / kQKBlock;
  for (size_t p = 0; p < count; p++) {
    if (p < next.count) prefetchBlocks<F>(next.rows[p], d);
    for (size_t b = 0; b < blocks; b++) {
      const uint8_t* blk = values[p] + b * F::kBytes;
      int8x16_t lo, hi;
      F::quants(blk, lo, hi);
      float32x4_t v[8];
      widen(lo, v);
      widen(hi, v + 4);
      const float valueScale = half(blk);
      for (size_t h = 0; h < heads; h++) {
        const float w = weights[h * stride + p] * valueScale;
        float* o = out + h * d + b * kQKBlock;
        for (int k = 0; k < 8; k++) vst1q_f32(o + 4 * k, vfmaq_n_f32(vld1q_f32(o + 4 * k), v[k], w));
      }
    }
  }
}

// f32 rows use the f32 paths (dot / axpy: the NEON set has no f32 tile kernels).
const KVTileKernels kTiles[kKVFormatCount] = {
    {nullptr, nullptr},
    {scoreF16, accumulateF16},
    {scoreQuant<Q8_0Format>, accumulateQuant<Q8_0Format>},
    {scoreQuant<Q4_0Format>, accumulateQuant<Q4_0Format>},
};

}  // namespace

const KVTileKernels* neonKVTiles() { return kTiles; }

}  // namespace vserve
