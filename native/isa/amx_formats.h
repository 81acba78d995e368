// What both AMX kernel families (amx_packed_kernels.cc on int8 tiles, amx_bf16_kernels.cc on bf16 tiles)
// share: the tile configuration, and each packed weight format's unpacking of a 16-row group into signed
// byte B tiles with their scales. Included by those two files only, each compiled with the AMX flags;
// everything here has internal linkage.
#pragma once
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "../packed_weights.h"
#include "avx512_q6k_packed_runs.h"

namespace vserve {
namespace {

constexpr size_t kTileRows = 16;

// The tile palette: C tiles 0-3 (16 x 16 int32 or f32), A tiles 4-5 (16 rows x K bytes), B tiles 6-7
// (K/4 rows x 64 bytes); the int8 kernels take K = 32 or 16 bytes, the bf16 ones 64 (32 values). Loaded at the start of each kernel call and released at its end, so a thread holds
// tile state only while it computes (the state is 8 KiB of every context switch otherwise).
struct alignas(64) TileConfig {
  uint8_t palette;
  uint8_t startRow;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

template <int K>
void configureTiles() {
  TileConfig c;
  std::memset(&c, 0, sizeof c);
  c.palette = 1;
  for (int t = 0; t < 8; t++) {
    c.rows[t] = t < 6 ? kTileRows : K / 4;
    c.colsb[t] = t == 4 || t == 5 ? K : 64;
  }
  _tile_loadconfig(&c);
}

inline __m512 halfsToFloats(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline __m512 bytesToFloats(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
inline __m512 signedBytesToFloats(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

// ---- formats ----
// Each format steps along a group column in units; a unit unpacks into kTiles B tiles of K values
// (kTiles * 16 * K signed bytes). Tile t of unit u is step s = u * kTiles + t, which pairs with the
// activation values s * K .. s * K + K - 1 of every row; a format says for it:
//   weightScale(g, u, t)  the 16 weight rows' scales (lane r: row r)
//   rowScale(x, i, u, t)  activation row i's scale
// and, with kOffset, a term weightOffset(g, u, t) * rowOffset(x, i, u, t) added to each output (Q4_K's
// and Q5_K's mins against the activation sums).

// What the 32-value block formats (Q8_0, Q4_0, IQ4_NL) share: a unit is one block column of the packed
// group, its 16 f16 scales first (kBlockBytes in all), one tile of K = 32, against int8 activations with a
// scale per block; no offset term.
template <size_t kBlockBytesValue>
struct Block32Format {
  using Rows = SignedRows;
  static constexpr int kK = 32, kTiles = 1;
  static constexpr bool kOffset = false;
  static constexpr size_t kBlockBytes = kBlockBytesValue;
  static size_t groupBytes(size_t cols) { return cols / kQKBlock * kBlockBytes; }
  static size_t units(size_t cols) { return cols / kQKBlock; }
  static __m512 weightScale(const uint8_t* g, size_t u, int) { return halfsToFloats(g + u * kBlockBytes); }
  static float rowScale(const Rows& x, size_t i, size_t u, int) { return x.d[i * (x.cols / kQKBlock) + u]; }
  static __m512 weightOffset(const uint8_t*, size_t, int) { return _mm512_setzero_ps(); }
  static float rowOffset(const Rows&, size_t, size_t, int) { return 0.0f; }
};

// Q8_0: quants stored as q ^ 0x80; flipping the bit back gives the signed weights.
struct Q8_0Amx : Block32Format<32 + 16 * 32> {
  static void unpack(const uint8_t* g, size_t u, uint8_t* b) {
    const uint8_t* p = g + u * kBlockBytes + 32;
    const __m512i flip = _mm512_set1_epi8(char(0x80));
    for (int k = 0; k < 8; k++) _mm512_storeu_si512(b + 64 * k, _mm512_xor_si512(_mm512_loadu_si512(p + 64 * k), flip));
  }
  static void fallback(const Rows& x, const uint8_t* w, const MatmulRange& r) { avx512Kernels().matmulQ8_0Packed(x, w, r); }
};

// Q4_0 and IQ4_NL: vector k (k < 4) holds values 4k.. in its low nibbles and 16 + 4k.. in its high ones,
// so the low nibbles of the 4 vectors are tile rows 0-3 and the high ones rows 4-7. Q4_0 maps a nibble to
// nibble - 8, IQ4_NL to its codebook value, both by one byte shuffle.
template <bool kCodebook>
struct Nibble32Amx : Block32Format<32 + 16 * 16> {
  static __m512i table() {
    if constexpr (kCodebook) {
      return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4_NLValues)));
    } else {
      return _mm512_broadcast_i32x4(_mm_setr_epi8(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7));
    }
  }
  static void unpack(const uint8_t* g, size_t u, uint8_t* b) {
    const uint8_t* p = g + u * kBlockBytes + 32;
    const __m512i low = _mm512_set1_epi8(0x0f), values = table();
    for (int k = 0; k < 4; k++) {
      const __m512i v = _mm512_loadu_si512(p + 64 * k);
      _mm512_storeu_si512(b + 64 * k, _mm512_shuffle_epi8(values, _mm512_and_si512(v, low)));
      _mm512_storeu_si512(b + 64 * (k + 4), _mm512_shuffle_epi8(values, _mm512_and_si512(_mm512_srli_epi16(v, 4), low)));
    }
  }
  static void fallback(const Rows& x, const uint8_t* w, const MatmulRange& r) {
    if constexpr (kCodebook) {
      avx512MatmulIQ4_NLPacked(x, w, r);
    } else {
      avx512Kernels().matmulQ4_0Packed(x, w, r);
    }
  }
};

// Q4_K (and Q5_K: kFifthBit): unit = one chunk c of a super-block (64 values); its low nibbles are
// sub-block 2c (tile 0), its high nibbles sub-block 2c + 1 (tile 1). Nibbles (and 5-bit values) are
// non-negative, so they are the signed bytes as they stand; the mins go against the activation sums.
template <bool kFifthBit>
struct Q4_KLayoutAmx {
  using Rows = KQuantRows;
  static constexpr int kK = 32, kTiles = 2;
  static constexpr bool kOffset = true;
  static constexpr size_t kColumnBytes = kFifthBit ? kQ5_KPackedBytes : kQ4_KPackedBytes;
  static constexpr size_t kScalesAt = 64, kMinsAt = kScalesAt + 8 * kPackRows, kQuantsAt = kMinsAt + 8 * kPackRows;
  static size_t groupBytes(size_t cols) { return cols / kQKSuper * kColumnBytes; }
  static size_t units(size_t cols) { return cols / kQKSuper * 4; }
  static void unpack(const uint8_t* g, size_t u, uint8_t* b) {
    const uint8_t* p = g + u / 4 * kColumnBytes;
    const int c = int(u % 4);
    const uint8_t* quants = p + kQuantsAt + 32 * kPackRows * c;
    const __m512i low = _mm512_set1_epi8(0x0f), fifth = _mm512_set1_epi8(0x10);
    for (int k = 0; k < 8; k++) {
      const __m512i v = _mm512_loadu_si512(quants + 64 * k);
      __m512i lo = _mm512_and_si512(v, low);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      if constexpr (kFifthBit) {
        // Bit 2c of each high-bit byte is the low nibble's fifth bit, bit 2c + 1 the high one's: both to bit 4.
        const __m512i h = _mm512_loadu_si512(p + kQ5_KPackedHighAt + 64 * k);
        const __m512i hLo = 2 * c <= 4 ? _mm512_slli_epi16(h, 4 - 2 * c) : _mm512_srli_epi16(h, 2 * c - 4);
        const __m512i hHi = 2 * c + 1 <= 4 ? _mm512_slli_epi16(h, 3 - 2 * c) : _mm512_srli_epi16(h, 2 * c - 3);
        lo = _mm512_or_si512(lo, _mm512_and_si512(hLo, fifth));
        hi = _mm512_or_si512(hi, _mm512_and_si512(hHi, fifth));
      }
      _mm512_storeu_si512(b + 64 * k, lo);
      _mm512_storeu_si512(b + 512 + 64 * k, hi);
    }
  }
  static __m512 weightScale(const uint8_t* g, size_t u, int t) {
    const uint8_t* p = g + u / 4 * kColumnBytes;
    return _mm512_mul_ps(bytesToFloats(p + kScalesAt + 16 * (2 * (u % 4) + t)), halfsToFloats(p));
  }
  static float rowScale(const Rows& x, size_t i, size_t u, int t) { return x.d[i * (x.cols / kQKBlock) + 2 * u + t]; }
  static __m512 weightOffset(const uint8_t* g, size_t u, int t) {
    const uint8_t* p = g + u / 4 * kColumnBytes;
    const __m512 negDmin = _mm512_sub_ps(_mm512_setzero_ps(), halfsToFloats(p + 32));
    return _mm512_mul_ps(bytesToFloats(p + kMinsAt + 16 * (2 * (u % 4) + t)), negDmin);
  }
  static float rowOffset(const Rows& x, size_t i, size_t u, int t) {
    const float* s = x.s + i * (x.cols / 16) + 4 * u + 2 * t;
    return s[0] + s[1];
  }
  static void fallback(const Rows& x, const uint8_t* w, const MatmulRange& r) {
    if constexpr (kFifthBit) {
      avx512SuperBlockKernels()->matmulQ5_KPacked(x, w, r);
    } else {
      avx512Kernels().matmulQ4_KPacked(x, w, r);
    }
  }
};

// What Q6_K and Q3_K share: 8 units of 32 values per super-block, each unit two 16-value sub-blocks (tiles
// of K = 16) whose signed 8-bit scales lie at kScalesAt, times the super-block's f32 d at its start; the
// unpacked values are signed, so there is no offset term.
template <size_t kSuperBytes, size_t kScalesAt>
struct SubBlock16Format {
  using Rows = KQuantRows;
  static constexpr int kK = 16, kTiles = 2;
  static constexpr bool kOffset = false;
  static size_t groupBytes(size_t cols) { return cols / kQKSuper * kSuperBytes; }
  static size_t units(size_t cols) { return cols / kQKSuper * 8; }
  static __m512 weightScale(const uint8_t* g, size_t u, int t) {
    const uint8_t* p = g + u / 8 * kSuperBytes;
    const size_t j = 2 * (u % 8) + size_t(t);  // sub-block of the super-block
    return _mm512_mul_ps(signedBytesToFloats(p + kScalesAt + 16 * j), _mm512_loadu_ps(p));
  }
  static float rowScale(const Rows& x, size_t i, size_t u, int) { return x.d[i * (x.cols / kQKBlock) + u]; }
  static __m512 weightOffset(const uint8_t*, size_t, int) { return _mm512_setzero_ps(); }
  static float rowOffset(const Rows&, size_t, size_t, int) { return 0.0f; }
};

// Q6_K: unit = one run of 32 values (half h, run c: values 128h + 32c..), merged from ql nibbles and qh
// bit pairs as the AVX-512 kernel does, minus 32 so the values are signed (tile rows 0-3 and 4-7 are its
// two sub-blocks).
struct Q6_KAmx : SubBlock16Format<kQ6_KPackedBytes, kQ6_KPackedScalesAt> {
  static void unpack(const uint8_t* g, size_t u, uint8_t* b) {
    const uint8_t* p = g + u / 8 * kQ6_KPackedBytes;
    const int h = int(u % 8) / 4, c = int(u % 4);
    const uint8_t* ql = p + kQ6_KPackedLowAt + 1024 * h;
    const uint8_t* qh = p + kQ6_KPackedHighAt + 512 * h;
    const __m512i offset = _mm512_set1_epi8(32);
    for (int k = 0; k < 8; k++) _mm512_storeu_si512(b + 64 * k, _mm512_sub_epi8(q6kPackedRunVector(ql, qh, c, k), offset));
  }
  static void fallback(const Rows& x, const uint8_t* w, const MatmulRange& r) { avx512Kernels().matmulQ6_KPacked(x, w, r); }
};

// Q3_K: unit = one run t of 32 values (half h = t / 4, shift s = t % 4: values 128h + 32s..), assembled
// as the AVX-512 kernel does (bits 2s..2s+1 of the qs bytes, bit t of the hmask bytes as bit 2: value + 4)
// and then less 4, so the values are signed (tile rows 0-3 and 4-7 are its two sub-blocks).
struct Q3_KAmx : SubBlock16Format<kQ3_KPackedBytes, kQ3_KPackedScalesAt> {
  static void unpack(const uint8_t* g, size_t u, uint8_t* b) {
    const uint8_t* p = g + u / 8 * kQ3_KPackedBytes;
    const int t = int(u % 8), h = t / 4, s = t % 4;
    const uint8_t* qs = p + kQ3_KPackedLowAt + 8 * 64 * h;
    const uint8_t* hmask = p + kQ3_KPackedHighAt;
    const __m512i lowBits = _mm512_set1_epi8(0x03), thirdBit = _mm512_set1_epi8(0x04), offset = _mm512_set1_epi8(4);
    for (int k = 0; k < 8; k++) {
      const __m512i q = _mm512_loadu_si512(qs + 64 * k);
      const __m512i m = _mm512_loadu_si512(hmask + 64 * k);
      // 16-bit shifts by at most 5 keep bit t within its byte.
      const __m512i third = t <= 2 ? _mm512_slli_epi16(m, 2 - t) : _mm512_srli_epi16(m, t - 2);
      const __m512i biased = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(q, 2 * s), lowBits), _mm512_and_si512(third, thirdBit));
      _mm512_storeu_si512(b + 64 * k, _mm512_sub_epi8(biased, offset));
    }
  }
  static void fallback(const Rows& x, const uint8_t* w, const MatmulRange& r) { avx512SuperBlockKernels()->matmulQ3_KPacked(x, w, r); }
};

// IQ4_XS: unit = one sub-block j (32 values) laid out as a packed Q4_0 block column; the nibbles map
// through the codebook, and the scale is d times the sub-block's 6-bit scale - 32.
struct IQ4_XSAmx {
  using Rows = KQuantRows;
  static constexpr int kK = 32, kTiles = 1;
  static constexpr bool kOffset = false;
  static size_t groupBytes(size_t cols) { return cols / kQKSuper * kIQ4_XSPackedBytes; }
  static size_t units(size_t cols) { return cols / kQKSuper * 8; }
  static void unpack(const uint8_t* g, size_t u, uint8_t* b) {
    const uint8_t* p = g + u / 8 * kIQ4_XSPackedBytes + kIQ4_XSPackedQuantsAt + 16 * kPackRows * (u % 8);
    const __m512i low = _mm512_set1_epi8(0x0f);
    const __m512i values = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4_NLValues)));
    for (int k = 0; k < 4; k++) {
      const __m512i v = _mm512_loadu_si512(p + 64 * k);
      _mm512_storeu_si512(b + 64 * k, _mm512_shuffle_epi8(values, _mm512_and_si512(v, low)));
      _mm512_storeu_si512(b + 64 * (k + 4), _mm512_shuffle_epi8(values, _mm512_and_si512(_mm512_srli_epi16(v, 4), low)));
    }
  }
  static __m512 weightScale(const uint8_t* g, size_t u, int) {
    const uint8_t* p = g + u / 8 * kIQ4_XSPackedBytes;
    return _mm512_mul_ps(signedBytesToFloats(p + kIQ4_XSPackedScalesAt + 16 * (u % 8)), _mm512_loadu_ps(p));
  }
  static float rowScale(const Rows& x, size_t i, size_t u, int) { return x.d[i * (x.cols / kQKBlock) + u]; }
  static __m512 weightOffset(const uint8_t*, size_t, int) { return _mm512_setzero_ps(); }
  static float rowOffset(const Rows&, size_t, size_t, int) { return 0.0f; }
  static void fallback(const Rows& x, const uint8_t* w, const MatmulRange& r) { avx512SuperBlockKernels()->matmulIQ4_XSPacked(x, w, r); }
};

// One group's weights unpacked for the tile loop, once for all activation rows: for each step, the B
// tile (signed bytes) and the 16 rows' scales and offsets as floats.
struct UnpackedGroup {
  const uint8_t* b;
  const float* scale;   // [step][16]
  const float* offset;  // [step][16] (kOffset formats)
};

template <class F>
UnpackedGroup unpackGroup(const uint8_t* group, size_t steps, std::vector<uint8_t>& b, std::vector<float>& scales) {
  constexpr size_t kTileBytes = 16 * F::kK;
  if (b.size() < steps * kTileBytes) b.resize(steps * kTileBytes);
  if (scales.size() < 2 * steps * 16) scales.resize(2 * steps * 16);
  float* scale = scales.data();
  float* offset = scale + steps * 16;
  for (size_t u = 0; u < steps / F::kTiles; u++) F::unpack(group, u, b.data() + u * F::kTiles * kTileBytes);
  for (size_t s = 0; s < steps; s++) {
    const size_t u = s / F::kTiles;
    const int t = int(s % F::kTiles);
    _mm512_storeu_ps(scale + 16 * s, F::weightScale(group, u, t));
    if constexpr (F::kOffset) _mm512_storeu_ps(offset + 16 * s, F::weightOffset(group, u, t));
  }
  return {b.data(), scale, offset};
}

}  // namespace
}  // namespace vserve
