// The portable encoders and decoders of the KV formats. Encoding follows ggml's reference quantizers
// step by step in f32 (no fused multiply-adds: this file is built without -mfma), so src/kv/formats/*.ts
// produce the same bytes.
#include "kv_format.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ggml_types.h"

namespace vserve {
namespace {

void storeU16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

void encodeF32(const float* x, size_t n, uint8_t* dst) { std::memcpy(dst, x, n * 4); }
void decodeF32(const uint8_t* row, size_t first, size_t n, float* out) { std::memcpy(out, row + first * 4, n * 4); }

void encodeF16(const float* x, size_t n, uint8_t* dst) {
  for (size_t i = 0; i < n; i++) storeU16(dst + 2 * i, floatToHalf(x[i]));
}
void decodeF16(const uint8_t* row, size_t first, size_t n, float* out) {
  for (size_t i = 0; i < n; i++) out[i] = halfToFloat(loadU16(row + 2 * (first + i)));
}

void encodeQ8_0(const float* x, size_t n, uint8_t* dst) {
  for (size_t b = 0; b < n / kQKBlock; b++, x += kQKBlock, dst += kQ8_0Bytes) {
    float amax = 0.0f;
    for (int i = 0; i < kQKBlock; i++) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    storeU16(dst, floatToHalf(d));
    for (int i = 0; i < kQKBlock; i++) dst[2 + i] = uint8_t(int8_t(std::roundf(x[i] * id)));
  }
}
void decodeQ8_0(const uint8_t* row, size_t first, size_t n, float* out) {
  for (size_t i = 0; i < n; i++) {
    const size_t v = first + i;
    const uint8_t* blk = row + v / kQKBlock * kQ8_0Bytes;
    out[i] = halfToFloat(loadU16(blk)) * float(int8_t(blk[2 + v % kQKBlock]));
  }
}

void encodeQ4_0(const float* x, size_t n, uint8_t* dst) {
  for (size_t b = 0; b < n / kQKBlock; b++, x += kQKBlock, dst += kQ4_0Bytes) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < kQKBlock; i++) {
      if (std::fabs(x[i]) > amax) {
        amax = std::fabs(x[i]);
        max = x[i];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    storeU16(dst, floatToHalf(d));
    for (int j = 0; j < kQKBlock / 2; j++) {
      const float lo = x[j] * id, hi = x[j + 16] * id;
      const uint8_t q0 = uint8_t(std::min(15, int(int8_t(lo + 8.5f))));
      const uint8_t q1 = uint8_t(std::min(15, int(int8_t(hi + 8.5f))));
      dst[2 + j] = uint8_t(q0 | (q1 << 4));
    }
  }
}
void decodeQ4_0(const uint8_t* row, size_t first, size_t n, float* out) {
  for (size_t i = 0; i < n; i++) {
    const size_t v = first + i, j = v % kQKBlock;
    const uint8_t* blk = row + v / kQKBlock * kQ4_0Bytes;
    const uint8_t byte = blk[2 + j % 16];
    out[i] = halfToFloat(loadU16(blk)) * float(int((j < 16 ? byte & 0x0f : byte >> 4)) - 8);
  }
}

const KVFormatTraits kFormats[kKVFormatCount] = {
    {"f32", 1, 4, encodeF32, decodeF32},
    {"f16", 1, 2, encodeF16, decodeF16},
    {"q8_0", kQKBlock, kQ8_0Bytes, encodeQ8_0, decodeQ8_0},
    {"q4_0", kQKBlock, kQ4_0Bytes, encodeQ4_0, decodeQ4_0},
};

}  // namespace

const KVFormatTraits& kvFormat(uint32_t id) { return kFormats[id < kKVFormatCount ? id : 0]; }

uint16_t floatToHalf(float x) {
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

}  // namespace vserve
