// AMX-INT8 matmuls on packed weights (packed_weights.h), for prefill: the "avx512-amx" kernel set is the
// AVX-512 set with its packed Q8_0 / Q4_0 / IQ4_NL / Q3_K / Q4_K / Q5_K / Q6_K / IQ4_XS kernels replaced by
// these. Compiled into a static library of its own with the AMX flags; cpu_features.cc offers the set
// only where the CPU has AMX-TILE and AMX-INT8 and the kernel granted this process the tile state.
//
// The packed layout already is the B-tile layout of TDPBSSD: for a block of 32 (or 16) K values of a
// 16-row group, dword (k, r) at 64k + 4r holds K values 4k..4k+3 of weight row r, i.e. K/4 tile rows of
// 16 columns x 4 bytes. A format unpacks one step of a group column (nibbles, split bits, codebooks) into
// signed bytes in that layout; the A tile is 16 activation rows x K bytes. Every C tile (16 activation
// rows x 16 weight rows of int32) covers one weight scale block, so it is converted to f32 and scaled
// after each block, as the AVX-512 kernels do per block: by the weight and activation scales where the
// activations have a scale per 32 values (SignedRows), by the weight scales alone where they have one
// per super-block (KQuantRows), whose scale then multiplies the super-block's sum once.
//
// Per kernel call (a run of groups, matmul.cc makes them long: KernelSet::packedLongTasksFrom) the
// activation scales are laid out once (and the quants copied tile by tile, over enough groups), and per
// group the weights are unpacked once; then each group meets the row tiles two at a time, the tile unit
// and the vector units working on staggered steps.
// Activation rows past the last whole 16 (and decode, n < 16) go to the AVX-512 packed kernel: a
// partial tile would need its own tile configuration or a padded copy of the rows.
#include <immintrin.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "../packed_weights.h"
#include "avx512_q6k_packed_runs.h"

namespace vserve {
namespace {

constexpr size_t kTileRows = 16;

// The tile palette: C tiles 0-3 (16 x 16 int32), A tiles 4-5 (16 rows x K bytes), B tiles 6-7 (K/4
// rows x 64 bytes). Loaded at the start of each kernel call and released at its end, so a thread holds
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

// Rows [from, rows) of the activations, for the AVX-512 kernel.
SignedRows rowsFrom(const SignedRows& x, size_t from) {
  const size_t blocks = x.cols / kQKBlock;
  return {x.q + from * x.cols, x.d + from * blocks, x.bias + from * blocks, x.rows - from, x.cols};
}
KQuantRows rowsFrom(const KQuantRows& x, size_t from) {
  return {x.q + from * x.cols, x.d + from * (x.cols / kQKBlock), x.s + from * (x.cols / 16), x.rows - from, x.cols};
}

// ---- formats ----
// Each format steps along a group column in units; a unit unpacks into kTiles B tiles of K values
// (kTiles * 16 * K signed bytes). Tile t of unit u is step s = u * kTiles + t, which pairs with the
// activation values s * K .. s * K + K - 1 of every row; a format says for it:
//   weightScale(g, u, t)  the 16 weight rows' scales (lane r: row r)
//   rowScale(x, i, u, t)  activation row i's scale
// and, with kOffset, a term weightOffset(g, u, t) * rowOffset(x, i, u, t) added to each output (Q4_K's
// and Q5_K's mins against the activation sums).

// Q8_0: quants stored as q ^ 0x80; flipping the bit back gives the signed weights.
struct Q8_0Amx {
  using Rows = SignedRows;
  static constexpr int kK = 32, kTiles = 1;
  static constexpr bool kOffset = false;
  static constexpr size_t kBlockBytes = 32 + 16 * 32;
  static size_t groupBytes(size_t cols) { return cols / kQKBlock * kBlockBytes; }
  static size_t units(size_t cols) { return cols / kQKBlock; }
  static void unpack(const uint8_t* g, size_t u, uint8_t* b) {
    const uint8_t* p = g + u * kBlockBytes + 32;
    const __m512i flip = _mm512_set1_epi8(char(0x80));
    for (int k = 0; k < 8; k++) _mm512_storeu_si512(b + 64 * k, _mm512_xor_si512(_mm512_loadu_si512(p + 64 * k), flip));
  }
  static __m512 weightScale(const uint8_t* g, size_t u, int) { return halfsToFloats(g + u * kBlockBytes); }
  static float rowScale(const Rows& x, size_t i, size_t u, int) { return x.d[i * (x.cols / kQKBlock) + u]; }
  static __m512 weightOffset(const uint8_t*, size_t, int) { return _mm512_setzero_ps(); }
  static float rowOffset(const Rows&, size_t, size_t, int) { return 0.0f; }
  static void fallback(const Rows& x, const uint8_t* w, const MatmulRange& r) { avx512Kernels().matmulQ8_0Packed(x, w, r); }
};

// Q4_0 and IQ4_NL: vector k (k < 4) holds values 4k.. in its low nibbles and 16 + 4k.. in its high ones,
// so the low nibbles of the 4 vectors are tile rows 0-3 and the high ones rows 4-7. Q4_0 maps a nibble to
// nibble - 8, IQ4_NL to its codebook value, both by one byte shuffle.
template <bool kCodebook>
struct Nibble32Amx {
  using Rows = SignedRows;
  static constexpr int kK = 32, kTiles = 1;
  static constexpr bool kOffset = false;
  static constexpr size_t kBlockBytes = 32 + 16 * 16;
  static size_t groupBytes(size_t cols) { return cols / kQKBlock * kBlockBytes; }
  static size_t units(size_t cols) { return cols / kQKBlock; }
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
  static __m512 weightScale(const uint8_t* g, size_t u, int) { return halfsToFloats(g + u * kBlockBytes); }
  static float rowScale(const Rows& x, size_t i, size_t u, int) { return x.d[i * (x.cols / kQKBlock) + u]; }
  static __m512 weightOffset(const uint8_t*, size_t, int) { return _mm512_setzero_ps(); }
  static float rowOffset(const Rows&, size_t, size_t, int) { return 0.0f; }
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

// Q6_K: unit = one run of 32 values (half h, run c: values 128h + 32c..), merged from ql nibbles and qh
// bit pairs as the AVX-512 kernel does, minus 32 so the values are signed and need no offset term. Its
// two 16-value sub-blocks have scales of their own, so each is a tile of K = 16 (tile rows 0-3, 4-7).
struct Q6_KAmx {
  using Rows = KQuantRows;
  static constexpr int kK = 16, kTiles = 2;
  static constexpr bool kOffset = false;
  static size_t groupBytes(size_t cols) { return cols / kQKSuper * kQ6_KPackedBytes; }
  static size_t units(size_t cols) { return cols / kQKSuper * 8; }
  static void unpack(const uint8_t* g, size_t u, uint8_t* b) {
    const uint8_t* p = g + u / 8 * kQ6_KPackedBytes;
    const int h = int(u % 8) / 4, c = int(u % 4);
    const uint8_t* ql = p + kQ6_KPackedLowAt + 1024 * h;
    const uint8_t* qh = p + kQ6_KPackedHighAt + 512 * h;
    const __m512i offset = _mm512_set1_epi8(32);
    for (int k = 0; k < 8; k++) _mm512_storeu_si512(b + 64 * k, _mm512_sub_epi8(q6kPackedRunVector(ql, qh, c, k), offset));
  }
  static __m512 weightScale(const uint8_t* g, size_t u, int t) {
    const uint8_t* p = g + u / 8 * kQ6_KPackedBytes;
    const size_t j = 2 * (u % 8) + size_t(t);  // sub-block of the super-block
    return _mm512_mul_ps(signedBytesToFloats(p + kQ6_KPackedScalesAt + 16 * j), _mm512_loadu_ps(p));
  }
  static float rowScale(const Rows& x, size_t i, size_t u, int) { return x.d[i * (x.cols / kQKBlock) + u]; }
  static __m512 weightOffset(const uint8_t*, size_t, int) { return _mm512_setzero_ps(); }
  static float rowOffset(const Rows&, size_t, size_t, int) { return 0.0f; }
  static void fallback(const Rows& x, const uint8_t* w, const MatmulRange& r) { avx512Kernels().matmulQ6_KPacked(x, w, r); }
};

// Q3_K: unit = one run t of 32 values (half h = t / 4, shift s = t % 4: values 128h + 32s..), assembled
// as the AVX-512 kernel does (bits 2s..2s+1 of the qs bytes, bit t of the hmask bytes as bit 2: value + 4)
// and then less 4, so the values are signed and need no offset term. Its two 16-value sub-blocks have
// scales of their own, so each is a tile of K = 16 (tile rows 0-3, 4-7).
struct Q3_KAmx {
  using Rows = KQuantRows;
  static constexpr int kK = 16, kTiles = 2;
  static constexpr bool kOffset = false;
  static size_t groupBytes(size_t cols) { return cols / kQKSuper * kQ3_KPackedBytes; }
  static size_t units(size_t cols) { return cols / kQKSuper * 8; }
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
  static __m512 weightScale(const uint8_t* g, size_t u, int t) {
    const uint8_t* p = g + u / 8 * kQ3_KPackedBytes;
    const size_t j = 2 * (u % 8) + size_t(t);  // sub-block of the super-block
    return _mm512_mul_ps(signedBytesToFloats(p + kQ3_KPackedScalesAt + 16 * j), _mm512_loadu_ps(p));
  }
  static float rowScale(const Rows& x, size_t i, size_t u, int) { return x.d[i * (x.cols / kQKBlock) + u]; }
  static __m512 weightOffset(const uint8_t*, size_t, int) { return _mm512_setzero_ps(); }
  static float rowOffset(const Rows&, size_t, size_t, int) { return 0.0f; }
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

// ---- the tile driver ----

// How many consecutive steps share one activation row scale: KQuantRows carry one scale per super-block
// (repeated per 32 values), so their tiles are summed with the weight scales alone over a super-block and
// the row scale applied once at its end; SignedRows carry a scale per 32 values, i.e. per step.
template <class F>
constexpr size_t kStepsPerRowScale = std::is_same_v<typename F::Rows, KQuantRows> ? size_t(kQKSuper / F::kK) : 1;

// 16 activation rows for the tile loop: the A tile of step s at q + s * stepBytes (16 rows rowBytes
// apart), and for each step the rows' scales and offsets at fixed places for the epilogue. The quants
// are either the rows in place (stepBytes K, rowBytes cols) or copied tile by tile (stepBytes 16 K,
// rowBytes K): a tile load from the rows in place reads 16 lines `cols` apart, which at power-of-two
// widths fall into a few cache sets and evict each other, so the copy pays off over enough groups.
struct TiledRows {
  const int8_t* q;
  size_t stepBytes, rowBytes;
  const float* scale;   // [step][16]
  const float* offset;  // [step][16] (kOffset formats)
};

// Groups per kernel call from which the quants are copied tile by tile (the copy costs about as much
// as a couple of groups' tile work).
constexpr size_t kMinGroupsToCopy = 8;

// The scales and offsets (and, with `copy`, the quants) of rows [0, rows) (a multiple of 16), one row
// tile after the other. A format's step s always starts at column s * K.
template <class F>
void tileActivations(const typename F::Rows& x, size_t rows, bool copy, std::vector<int8_t>& q, std::vector<float>& scales) {
  const size_t steps = x.cols / F::kK;
  if (copy && q.size() < rows * x.cols) q.resize(rows * x.cols);
  if (scales.size() < 2 * steps * rows) scales.resize(2 * steps * rows);
  for (size_t i0 = 0; i0 < rows; i0 += kTileRows) {
    float* scale = scales.data() + 2 * steps * i0;
    float* offset = scale + steps * kTileRows;
    for (size_t s = 0, u = 0; u < steps / F::kTiles; u++) {
      for (int t = 0; t < F::kTiles; t++, s++) {
        for (size_t m = 0; m < kTileRows; m++) {
          const float rs = F::rowScale(x, i0 + m, u, t);
          scale[s * kTileRows + m] = rs;
          if constexpr (F::kOffset) {
            // Per-super-block row scales are applied after the offset (accumulateStep), so it is taken
            // in their units (an all-zero super-block has scale 0 and offsets 0).
            const float ro = F::rowOffset(x, i0 + m, u, t);
            offset[s * kTileRows + m] = kStepsPerRowScale<F> == 1 ? ro : rs == 0.0f ? 0.0f : ro / rs;
          }
        }
      }
    }
    if (copy) {
      for (size_t m = 0; m < kTileRows; m++) {
        int8_t* tiles = q.data() + i0 * x.cols + m * F::kK;
        const int8_t* row = x.q + (i0 + m) * x.cols;
        for (size_t s = 0; s < steps; s++) std::memcpy(tiles + s * kTileRows * F::kK, row + s * F::kK, F::kK);
      }
    }
  }
}

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

// Adds one step's C tile (int32, 16 activation rows x 16 weight rows) into f32 accumulators. With one
// row scale per step, straight into `acc`; otherwise into the run's partial sums `part` (started on the
// run's first step), which its last step scales by the row scale into `acc`. Offsets (kOffset) are then
// taken in units of the row scale, as tileActivations lays them out.
template <class F, bool kFirst, bool kLast>
inline void accumulateStep(const float* weightScale, const float* weightOffset, const float* rowScale, const float* rowOffset,
                           const int32_t (*c)[16], float (*part)[16], float (*acc)[16]) {
  const __m512 ws = _mm512_loadu_ps(weightScale);
  __m512 wo = _mm512_setzero_ps();
  if constexpr (F::kOffset) wo = _mm512_loadu_ps(weightOffset);
#pragma GCC unroll 16
  for (size_t m = 0; m < kTileRows; m++) {
    const __m512 dot = _mm512_cvtepi32_ps(_mm512_load_si512(c[m]));
    if constexpr (kStepsPerRowScale<F> == 1) {
      __m512 v = _mm512_fmadd_ps(dot, _mm512_mul_ps(ws, _mm512_set1_ps(rowScale[m])), _mm512_load_ps(acc[m]));
      if constexpr (F::kOffset) v = _mm512_fmadd_ps(wo, _mm512_set1_ps(rowOffset[m]), v);
      _mm512_store_ps(acc[m], v);
    } else {
      __m512 v = kFirst ? _mm512_mul_ps(dot, ws) : _mm512_fmadd_ps(dot, ws, _mm512_load_ps(part[m]));
      if constexpr (F::kOffset) v = _mm512_fmadd_ps(wo, _mm512_set1_ps(rowOffset[m]), v);
      if constexpr (kLast) {
        _mm512_store_ps(acc[m], _mm512_fmadd_ps(v, _mm512_set1_ps(rowScale[m]), _mm512_load_ps(acc[m])));
      } else {
        _mm512_store_ps(part[m], v);
      }
    }
  }
}

// One 16-row group x NR row tiles of activations (a0, and a1 16 rows further when NR is 2; they share
// each B tile load). A tile store waits for the multiplies before it, and a vector load of what a tile
// store wrote waits for that store to retire, so the steps are staggered: step s is multiplied into C
// tiles 0-1 or 2-3 (s even or odd), stored a step later and converted and scaled by the vector units
// two steps later, while the tile unit works on the next steps.
template <class F, int NR>
void tileRows(const TiledRows& a0, const TiledRows& a1, const UnpackedGroup& g, size_t steps, float* out, size_t outStride) {
  constexpr size_t kTileBytes = 16 * F::kK, kRun = kStepsPerRowScale<F>;
  alignas(64) int32_t c[2][2][kTileRows][16];  // [buffer][row tile]
  alignas(64) float acc[2][kTileRows][16];
  alignas(64) float part[kRun > 1 ? 2 : 1][kTileRows][16];
  std::memset(acc, 0, sizeof acc);
  auto accumulateTile = [&](const TiledRows& a, size_t s, const int32_t (*cs)[16], float (*pa)[16], float (*ac)[16]) {
    const float* ws = g.scale + 16 * s;
    const float* wo = g.offset + 16 * s;
    const float* rs = a.scale + s * kTileRows;
    const float* ro = a.offset + s * kTileRows;
    if (kRun == 1) {
      accumulateStep<F, true, true>(ws, wo, rs, ro, cs, pa, ac);
    } else if (s % kRun == 0) {
      accumulateStep<F, true, false>(ws, wo, rs, ro, cs, pa, ac);
    } else if (s % kRun == kRun - 1) {
      accumulateStep<F, false, true>(ws, wo, rs, ro, cs, pa, ac);
    } else {
      accumulateStep<F, false, false>(ws, wo, rs, ro, cs, pa, ac);
    }
  };
  for (size_t s = 0; s < steps + 2; s++) {
    if (s < steps) {
      const uint8_t* bq = g.b + s * kTileBytes;
      // (The tile numbers of the intrinsics must be literals.)
      _tile_loadd(4, a0.q + s * a0.stepBytes, a0.rowBytes);
      if constexpr (NR > 1) _tile_loadd(5, a1.q + s * a1.stepBytes, a1.rowBytes);
      if (s % 2 == 0) {
        _tile_loadd(6, bq, 64);
        _tile_zero(0);
        _tile_dpbssd(0, 4, 6);
        if constexpr (NR > 1) {
          _tile_zero(1);
          _tile_dpbssd(1, 5, 6);
        }
      } else {
        _tile_loadd(7, bq, 64);
        _tile_zero(2);
        _tile_dpbssd(2, 4, 7);
        if constexpr (NR > 1) {
          _tile_zero(3);
          _tile_dpbssd(3, 5, 7);
        }
      }
    }
    if (s >= 1 && s - 1 < steps) {
      if ((s - 1) % 2 == 0) {
        _tile_stored(0, c[0][0], 64);
        if constexpr (NR > 1) _tile_stored(1, c[0][1], 64);
      } else {
        _tile_stored(2, c[1][0], 64);
        if constexpr (NR > 1) _tile_stored(3, c[1][1], 64);
      }
    }
    if (s >= 2 && s - 2 < steps) {
      accumulateTile(a0, s - 2, c[s % 2][0], part[0], acc[0]);
      if constexpr (NR > 1) accumulateTile(a1, s - 2, c[s % 2][1], part[kRun > 1 ? 1 : 0], acc[1]);
    }
  }
  for (size_t m = 0; m < kTileRows; m++) _mm512_storeu_ps(out + m * outStride, _mm512_load_ps(acc[0][m]));
  if constexpr (NR > 1) {
    for (size_t m = 0; m < kTileRows; m++) _mm512_storeu_ps(out + (kTileRows + m) * outStride, _mm512_load_ps(acc[1][m]));
  }
}

template <class F>
void matmulAmx(const typename F::Rows& x, const uint8_t* w, const MatmulRange& range) {
  const size_t tiledRows = x.rows / kTileRows * kTileRows;
  if (tiledRows > 0) {
    thread_local std::vector<int8_t> q;
    thread_local std::vector<float> scales;
    // A thread usually runs several tasks of one matmul: the rows are laid out once for all of them.
    struct Layout {
      uint64_t generation;
      size_t rows, cols;
      bool copy;
    };
    thread_local Layout laidOut{0, 0, 0, false};
    const bool copy = (range.rowEnd - range.rowBegin) / kPackRows >= kMinGroupsToCopy;
    const Layout wanted{x.generation, tiledRows, x.cols, copy};
    if (wanted.generation == 0 || wanted.generation != laidOut.generation || wanted.rows != laidOut.rows || wanted.cols != laidOut.cols || wanted.copy != laidOut.copy) {
      tileActivations<F>(x, tiledRows, copy, q, scales);
      laidOut = wanted;
    }
    configureTiles<F::kK>();
    const size_t groupBytes = F::groupBytes(x.cols), steps = F::units(x.cols) * F::kTiles;
    thread_local std::vector<uint8_t> b;
    thread_local std::vector<float> weightScales;
    // Groups outside: each group is unpacked once for all activation rows.
    for (size_t r = range.rowBegin; r < range.rowEnd; r += kPackRows) {
      const UnpackedGroup g = unpackGroup<F>(w + r / kPackRows * groupBytes, steps, b, weightScales);
      auto tiles = [&](size_t i0) {
        const float* scale = scales.data() + 2 * steps * i0;
        if (!copy) return TiledRows{x.q + i0 * x.cols, F::kK, x.cols, scale, scale + steps * kTileRows};
        return TiledRows{q.data() + i0 * x.cols, kTileRows * F::kK, F::kK, scale, scale + steps * kTileRows};
      };
      size_t i0 = 0;
      for (; i0 + 2 * kTileRows <= tiledRows; i0 += 2 * kTileRows) {
        tileRows<F, 2>(tiles(i0), tiles(i0 + kTileRows), g, steps, range.out + i0 * range.outStride + r, range.outStride);
      }
      if (i0 < tiledRows) tileRows<F, 1>(tiles(i0), tiles(i0), g, steps, range.out + i0 * range.outStride + r, range.outStride);
    }
    _tile_release();
  }
  if (tiledRows < x.rows) {
    F::fallback(rowsFrom(x, tiledRows), w, MatmulRange{range.rowBegin, range.rowEnd, range.out + tiledRows * range.outStride, range.outStride});
  }
}

void matmulQ8_0PackedAmx(const SignedRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Q8_0Amx>(x, w, range); }
void matmulQ4_0PackedAmx(const SignedRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Nibble32Amx<false>>(x, w, range); }
void matmulIQ4_NLPackedAmx(const SignedRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Nibble32Amx<true>>(x, w, range); }
void matmulQ4_KPackedAmx(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Q4_KLayoutAmx<false>>(x, w, range); }
void matmulQ5_KPackedAmx(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Q4_KLayoutAmx<true>>(x, w, range); }
void matmulQ6_KPackedAmx(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Q6_KAmx>(x, w, range); }
void matmulQ3_KPackedAmx(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Q3_KAmx>(x, w, range); }
void matmulIQ4_XSPackedAmx(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<IQ4_XSAmx>(x, w, range); }

}  // namespace

const KernelSet& avx512AmxKernels() {
  static const SuperBlockKernels kSuperBlocks = [] {
    SuperBlockKernels s = *avx512SuperBlockKernels();
    s.matmulQ5_KPacked = matmulQ5_KPackedAmx;
    s.matmulIQ4_XSPacked = matmulIQ4_XSPackedAmx;
    s.matmulQ3_KPacked = matmulQ3_KPackedAmx;
    return s;
  }();
  static const Block32Kernels kBlock32 = [] {
    Block32Kernels b = *avx512Block32Kernels();
    b.matmulIQ4_NLPacked = matmulIQ4_NLPackedAmx;
    return b;
  }();
  static const KernelSet kSet = [] {
    KernelSet k = avx512Kernels();
    k.isa = "avx512-amx";
    k.matmulQ8_0Packed = matmulQ8_0PackedAmx;
    k.matmulQ4_0Packed = matmulQ4_0PackedAmx;
    k.matmulQ4_KPacked = matmulQ4_KPackedAmx;
    k.matmulQ6_KPacked = matmulQ6_KPackedAmx;
    k.superBlocks = &kSuperBlocks;
    k.block32 = &kBlock32;
    k.packedLongTasksFrom = kTileRows;
    return k;
  }();
  return kSet;
}

}  // namespace vserve
