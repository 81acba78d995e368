// The portable encoders and decoders of the KV formats. Encoding follows ggml's reference quantizers (and
// src/kv/formats/kivi.ts for KIVI's) step by step in f32 (no fused multiply-adds: this file is built
// without -mfma), so src/kv/formats/*.ts produce the same bytes.
#include "kv_format.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ggml_types.h"

namespace vserve {
namespace {

void storeU16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

// Every f16 value as a float: the decoders read scales and minimums per value, and a table lookup is far
// cheaper than halfToFloat's branches.
const float* halfTable() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; h++) t[h] = halfToFloat(uint16_t(h));
    return t;
  }();
  return table.data();
}

float half(const uint8_t* p) { return halfTable()[loadU16(p)]; }

void encodeF32(const float* x, size_t n, uint8_t* dst, size_t) { std::memcpy(dst, x, n * 4); }
void decodeF32(const uint8_t* row, size_t first, size_t n, float* out, size_t, size_t, size_t) {
  std::memcpy(out, row + first * 4, n * 4);
}

void encodeF16Portable(const float* x, size_t n, uint8_t* dst) {
  for (size_t i = 0; i < n; i++) storeU16(dst + 2 * i, floatToHalf(x[i]));
}

#if defined(__x86_64__) && defined(__GNUC__)
// F16C's conversion rounds to nearest even as floatToHalf does, so the bytes are the same; only a NaN's
// payload could differ, so 8 values holding a NaN go the portable way.
__attribute__((target("avx,f16c"))) void encodeF16F16C(const float* x, size_t n, uint8_t* dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
      encodeF16Portable(x + i, 8, dst + 2 * i);
      continue;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  encodeF16Portable(x + i, n - i, dst + 2 * i);
}
#endif

void encodeF16(const float* x, size_t n, uint8_t* dst, size_t) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool f16c = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  if (f16c) return encodeF16F16C(x, n, dst);
#endif
  encodeF16Portable(x, n, dst);
}

void decodeF16(const uint8_t* row, size_t first, size_t n, float* out, size_t, size_t, size_t) {
  for (size_t i = 0; i < n; i++) out[i] = half(row + 2 * (first + i));
}

void encodeQ8_0(const float* x, size_t n, uint8_t* dst, size_t) {
  for (size_t b = 0; b < n / kQKBlock; b++, x += kQKBlock, dst += kQ8_0Bytes) {
    float amax = 0.0f;
    for (int i = 0; i < kQKBlock; i++) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    storeU16(dst, floatToHalf(d));
    for (int i = 0; i < kQKBlock; i++) dst[2 + i] = uint8_t(int8_t(std::roundf(x[i] * id)));
  }
}
void decodeQ8_0(const uint8_t* row, size_t first, size_t n, float* out, size_t, size_t, size_t) {
  for (size_t i = 0; i < n; i++) {
    const size_t v = first + i;
    const uint8_t* blk = row + v / kQKBlock * kQ8_0Bytes;
    out[i] = half(blk) * float(int8_t(blk[2 + v % kQKBlock]));
  }
}

void encodeQ4_0(const float* x, size_t n, uint8_t* dst, size_t) {
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
void decodeQ4_0(const uint8_t* row, size_t first, size_t n, float* out, size_t, size_t, size_t) {
  for (size_t i = 0; i < n; i++) {
    const size_t v = first + i, j = v % kQKBlock;
    const uint8_t* blk = row + v / kQKBlock * kQ4_0Bytes;
    const uint8_t byte = blk[2 + j % 16];
    out[i] = half(blk) * float(int((j < 16 ? byte & 0x0f : byte >> 4)) - 8);
  }
}

// KIVI (src/kv/formats/kivi.ts has the layouts): asymmetric codes q in 0 .. 2^bits - 1 with an f16 step s
// and minimum m per 32 values; a value is m + q * s.
struct StepAndMin {
  float step, min;
  uint16_t stepBits, minBits;
};

StepAndMin stepAndMin(const float* x, size_t stride, int levels) {
  float lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < 32; i++) {
    lo = std::min(lo, x[i * stride]);
    hi = std::max(hi, x[i * stride]);
  }
  StepAndMin r;
  r.minBits = floatToHalf(lo);
  r.min = halfToFloat(r.minBits);
  r.stepBits = floatToHalf((hi - r.min) / float(levels));
  r.step = halfToFloat(r.stepBits);
  return r;
}

uint8_t kiviCode(float x, const StepAndMin& p, float inv, int levels) {
  const float q = std::roundf((x - p.min) * inv);
  return uint8_t(std::min(float(levels), std::max(0.0f, q)));
}

template <int Bits>
void putCode(uint8_t* codes, size_t i, uint8_t q) {
  constexpr size_t perByte = 8 / Bits;
  codes[i / perByte] |= uint8_t(q << ((i % perByte) * Bits));
}

template <int Bits>
uint8_t getCode(const uint8_t* codes, size_t i) {
  constexpr size_t perByte = 8 / Bits;
  return (codes[i / perByte] >> ((i % perByte) * Bits)) & ((1 << Bits) - 1);
}

template <int Bits>
void encodeKiviToken(const float* x, size_t n, uint8_t* dst, size_t) {
  constexpr int levels = (1 << Bits) - 1;
  constexpr size_t blockBytes = 4 + 32 * Bits / 8;
  for (size_t b = 0; b < n / 32; b++, x += 32, dst += blockBytes) {
    const StepAndMin p = stepAndMin(x, 1, levels);
    const float inv = p.step != 0.0f ? 1.0f / p.step : 0.0f;
    storeU16(dst, p.stepBits);
    storeU16(dst + 2, p.minBits);
    std::memset(dst + 4, 0, blockBytes - 4);
    for (size_t i = 0; i < 32; i++) putCode<Bits>(dst + 4, i, kiviCode(x[i], p, inv, levels));
  }
}

template <int Bits>
void decodeKiviToken(const uint8_t* row, size_t first, size_t n, float* out, size_t, size_t, size_t) {
  constexpr size_t blockBytes = 4 + 32 * Bits / 8;
  for (size_t i = 0; i < n; i++) {
    const size_t v = first + i;
    const uint8_t* blk = row + v / 32 * blockBytes;
    out[i] = half(blk + 2) + float(getCode<Bits>(blk + 4, v % 32)) * half(blk);
  }
}

// Per channel: row j of a group is [codes of its n channels][slice j of the (step, min) table], slices of
// n / 8 bytes, so channel c's pair is in row 4c / (n / 8) at byte (4c) % (n / 8) of that row's slice.
template <int Bits>
void encodeKiviChannel(const float* x, size_t n, uint8_t* dst, size_t rowStride) {
  constexpr int levels = (1 << Bits) - 1;
  const size_t codeBytes = n * Bits / 8, slice = n / 8;
  for (size_t j = 0; j < 32; j++) std::memset(dst + j * rowStride, 0, codeBytes);
  for (size_t c = 0; c < n; c++) {
    const StepAndMin p = stepAndMin(x + c, n, levels);
    const float inv = p.step != 0.0f ? 1.0f / p.step : 0.0f;
    uint8_t* table = dst + (4 * c) / slice * rowStride + codeBytes + (4 * c) % slice;
    storeU16(table, p.stepBits);
    storeU16(table + 2, p.minBits);
    for (size_t j = 0; j < 32; j++) putCode<Bits>(dst + j * rowStride, c, kiviCode(x[j * n + c], p, inv, levels));
  }
}

template <int Bits>
void decodeKiviChannel(const uint8_t* row, size_t first, size_t n, float* out, size_t rowValues, size_t indexInGroup,
                       size_t rowStride) {
  const size_t codeBytes = rowValues * Bits / 8, slice = rowValues / 8;
  const uint8_t* group = row - indexInGroup * rowStride;
  for (size_t i = 0; i < n; i++) {
    const size_t c = first + i;
    const uint8_t* table = group + (4 * c) / slice * rowStride + codeBytes + (4 * c) % slice;
    out[i] = half(table + 2) + float(getCode<Bits>(row, c)) * half(table);
  }
}

const KVFormatTraits kFormats[kKVFormatCount] = {
    {"f32", 1, 4, 1, encodeF32, decodeF32},
    {"f16", 1, 2, 1, encodeF16, decodeF16},
    {"q8_0", kQKBlock, kQ8_0Bytes, 1, encodeQ8_0, decodeQ8_0},
    {"q4_0", kQKBlock, kQ4_0Bytes, 1, encodeQ4_0, decodeQ4_0},
    {"kivi2c", 32, 12, 32, encodeKiviChannel<2>, decodeKiviChannel<2>},
    {"kivi4c", 32, 20, 32, encodeKiviChannel<4>, decodeKiviChannel<4>},
    {"kivi2t", 32, 12, 1, encodeKiviToken<2>, decodeKiviToken<2>},
    {"kivi4t", 32, 20, 1, encodeKiviToken<4>, decodeKiviToken<4>},
};

}  // namespace

const KVFormatTraits& kvFormat(uint32_t id) { return kFormats[id < kKVFormatCount ? id : 0]; }

}  // namespace vserve
