#include "dequantize.h"

#include <cstring>

#include "block32_unpack.h"
#include "ggml_types.h"
#include "superblock_unpack.h"

namespace vserve {
namespace {

void dequantQ8_0(const uint8_t* src, float* dst, size_t blocks) {
  for (size_t b = 0; b < blocks; b++, src += kQ8_0Bytes, dst += kQKBlock) {
    const float d = halfToFloat(loadU16(src));
    const int8_t* q = reinterpret_cast<const int8_t*>(src + 2);
    for (int j = 0; j < kQKBlock; j++) dst[j] = d * float(q[j]);
  }
}

void dequantQ4_0(const uint8_t* src, float* dst, size_t blocks) {
  for (size_t b = 0; b < blocks; b++, src += kQ4_0Bytes, dst += kQKBlock) {
    const float d = halfToFloat(loadU16(src));
    const uint8_t* q = src + 2;
    for (int j = 0; j < 16; j++) {
      dst[j] = d * float(int(q[j] & 0xf) - 8);
      dst[j + 16] = d * float(int(q[j] >> 4) - 8);
    }
  }
}

// Q4_1, Q5_0, Q5_1, IQ4_NL: x = d * q + m per block.
void dequantBlock32(int type, const uint8_t* src, float* dst, size_t blocks) {
  const size_t bytes = size_t(block32Bytes(type));
  Block32Values v;
  for (size_t b = 0; b < blocks; b++, src += bytes, dst += kQKBlock) {
    unpackBlock32(type, src, v);
    // In double, rounded once to f32: d * q is exact there, so the result is that of the reference
    // dequantization (src/model/gguf/dequant.ts) bit for bit, min or not.
    for (int j = 0; j < kQKBlock; j++) dst[j] = float(double(v.d) * v.q[j] + double(v.m));
  }
}

// Q4_K packs eight 6-bit (scale, min) pairs into 12 bytes.
inline void q4kScaleMin(int j, const uint8_t* s, int* scale, int* min) {
  if (j < 4) {
    *scale = s[j] & 63;
    *min = s[j + 4] & 63;
  } else {
    *scale = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
    *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void dequantQ4_K(const uint8_t* src, float* dst, size_t blocks) {
  for (size_t b = 0; b < blocks; b++, src += kQ4_KBytes) {
    const float d = halfToFloat(loadU16(src));
    const float dmin = halfToFloat(loadU16(src + 2));
    const uint8_t* scales = src + 4;
    const uint8_t* q = src + 16;
    for (int sub = 0; sub < 8; sub += 2, q += 32) {
      int sc0, m0, sc1, m1;
      q4kScaleMin(sub, scales, &sc0, &m0);
      q4kScaleMin(sub + 1, scales, &sc1, &m1);
      const float d0 = d * float(sc0), min0 = dmin * float(m0);
      const float d1 = d * float(sc1), min1 = dmin * float(m1);
      for (int l = 0; l < 32; l++) *dst++ = d0 * float(q[l] & 0xf) - min0;
      for (int l = 0; l < 32; l++) *dst++ = d1 * float(q[l] >> 4) - min1;
    }
  }
}

void dequantQ6_K(const uint8_t* src, float* dst, size_t blocks) {
  for (size_t b = 0; b < blocks; b++, src += kQ6_KBytes) {
    const uint8_t* ql = src;
    const uint8_t* qh = src + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(src + 192);
    const float d = halfToFloat(loadU16(src + 208));
    for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, dst += 128) {
      for (int l = 0; l < 32; l++) {
        const int is = l / 16;
        const int q1 = int((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        dst[l] = d * float(sc[is]) * float(q1);
        dst[l + 32] = d * float(sc[is + 2]) * float(q2);
        dst[l + 64] = d * float(sc[is + 4]) * float(q3);
        dst[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

// Q2_K, Q3_K, Q5_K and IQ4_XS, through their integer form (superblock_unpack.h).
void dequantSuperBlocks(int type, int blockBytes, const uint8_t* src, float* dst, size_t blocks) {
  SuperBlockInts sb;
  for (size_t b = 0; b < blocks; b++, src += blockBytes) {
    unpackSuperBlock(type, src, sb);
    for (int g = 0; g < 16; g++) {
      const float scale = sb.d * float(sb.scale[g]), offset = sb.dmin * float(sb.min[g]);
      for (int l = 0; l < 16; l++) *dst++ = scale * float(sb.q[16 * g + l]) - offset;
    }
  }
}

}  // namespace

void dequantizeRow(int type, const uint8_t* src, float* dst, size_t count) {
  switch (type) {
    case kF32:
      std::memcpy(dst, src, count * 4);
      return;
    case kF16:
      for (size_t i = 0; i < count; i++) dst[i] = halfToFloat(loadU16(src + 2 * i));
      return;
    case kBF16:
      for (size_t i = 0; i < count; i++) dst[i] = bf16ToFloat(loadU16(src + 2 * i));
      return;
    case kQ8_0: return dequantQ8_0(src, dst, count / kQKBlock);
    case kQ4_0: return dequantQ4_0(src, dst, count / kQKBlock);
    case kQ4_1:
    case kQ5_0:
    case kQ5_1:
    case kIQ4_NL: return dequantBlock32(type, src, dst, count / kQKBlock);
    case kQ4_K: return dequantQ4_K(src, dst, count / kQKSuper);
    case kQ6_K: return dequantQ6_K(src, dst, count / kQKSuper);
    case kQ2_K: return dequantSuperBlocks(type, kQ2_KBytes, src, dst, count / kQKSuper);
    case kQ3_K: return dequantSuperBlocks(type, kQ3_KBytes, src, dst, count / kQKSuper);
    case kQ5_K: return dequantSuperBlocks(type, kQ5_KBytes, src, dst, count / kQKSuper);
    case kIQ4_XS: return dequantSuperBlocks(type, kIQ4_XSBytes, src, dst, count / kQKSuper);
    default: return;  // callers validate the type first
  }
}

}  // namespace vserve
