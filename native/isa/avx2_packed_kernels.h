// The AVX2 matmuls on weights packed 16 rows at a time (packed_weights.h), for Q8_0, Q4_0, IQ4_NL, Q5_0,
// Q4_1, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS; included by avx2_kernels.cc only. Internal linkage, as
// kquant_blocks.h explains.
//
// A packed quant vector of 64 bytes (16 rows, dword r = 4 weights of row r) is two 256-bit halves, rows 0-7
// and 8-15, so every int32 lane below is one weight row. Without VNNI the u8 x s8 dot is vpmaddubsw (int16
// pair sums, saturating) then vpmaddwd; the formulations keep every pair sum within int16:
// - Q8_0 quants are stored as q + 128, where 255 * 127 * 2 would saturate: they are flipped back to signed
//   and take the sign trick, |w| * (x with w's sign), at most 2 * 128 * 127 per pair. The bias that
//   SignedRows carries for the unsigned form is then not needed. IQ4_NL's grid values likewise.
// - Q4_0, Q4_1 and Q4_K nibbles (0..15) go straight in as the u8 operand: a pair is at most 2 * 15 * 127,
//   so the 8 pair vectors of a block (or sub-block) add up in int16 before one vpmaddwd. Q5_0 and Q5_1
//   values (0..31), their fifth bits expanded from the packed byte masks: 4 pair vectors at a time.
// - Q6_K values (0..63) go in straight too: pairs of at most 2 * 63 * 127, two of which still fit in int16.
//   Q5_K values (0..31): four pair vectors fit; Q3_K values + 4 (0..7) and Q2_K values (0..3): the four
//   of a sub-block.
// - IQ4_XS codebook values take the sign trick as IQ4_NL's, one pair vector per vpmaddwd.
// The K-quant kernels apply each sub-block's integer scale in vpmaddwd and convert to float once per
// super-block: KQuantRows repeats one activation scale over a super-block's 8 blocks.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "../packed_weights.h"
#include "packed_group_loop.h"
#include "weight_prefetch.h"

namespace vserve {
namespace {

inline __m256i broadcastDword(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Half h (rows 8h..8h+7) of the 64-byte packed vector at p.
inline __m256i packedHalf(const uint8_t* p, int h) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * h)); }

// The 8 f16 values at p as f32 (one row per lane).
inline __m256 halfFloats(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// Each dword lane's low word copied into its high word (values that fit in int16).
inline __m256i wordPairs(__m256i v) { return _mm256_blend_epi16(v, _mm256_slli_epi32(v, 16), 0xaa); }

// The 8 bytes at p (one per row) as int16 in both words of each dword lane, vpmaddwd's scale operand.
inline __m256i scaleWords(const uint8_t* p, bool isSigned) {
  const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return wordPairs(isSigned ? _mm256_cvtepi8_epi32(bytes) : _mm256_cvtepu8_epi32(bytes));
}

// The 8 bytes at p (one per row) as f32.
inline __m256 byteFloats(const uint8_t* p, bool isSigned) {
  const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return _mm256_cvtepi32_ps(isSigned ? _mm256_cvtepi8_epi32(bytes) : _mm256_cvtepu8_epi32(bytes));
}

inline void readAhead(const uint8_t* p, size_t bytes) {
  prefetchWeightLines(p + kWeightPrefetchBytes, bytes);
}

// Writes the 16 outputs of each of RX activation rows (two 8-lane halves of a 16-row group).
template <int RX>
inline void storeRows(const __m256 (&acc)[RX][2], float* out, size_t outStride) {
  for (int i = 0; i < RX; i++) {
    _mm256_storeu_ps(out + i * outStride, acc[i][0]);
    _mm256_storeu_ps(out + i * outStride + 8, acc[i][1]);
  }
}

// For the types of 16-value sub-blocks with an offset per sub-block (Q6_K's -32 and Q3_K's -4 times the
// int8 scale, Q2_K's -dmin times the min): per activation row and row half, the sum over the super-block's
// 16 sub-blocks of factors(j, h) (sub-block j's factor for rows 8h..8h+7, as f32) x (the activation sum of
// the sub-block), which the offset's common factor then multiplies once.
template <int RX, class Factors>
inline void factoredActivationSums(const KQuantRows& x, size_t i0, size_t superBlock, Factors factors, __m256 (&out)[RX][2]) {
  const size_t sums = x.cols / 16;
  for (int i = 0; i < RX; i++) out[i][0] = out[i][1] = _mm256_setzero_ps();
  for (int j = 0; j < 16; j++) {
    const __m256 sc[2] = {factors(j, 0), factors(j, 1)};
    for (int i = 0; i < RX; i++) {
      const __m256 sj = _mm256_set1_ps(x.s[(i0 + i) * sums + superBlock * 16 + j]);
      for (int h = 0; h < 2; h++) out[i][h] = _mm256_fmadd_ps(sc[h], sj, out[i][h]);
    }
  }
}

// The same with the int8 scales at `scales` (byte 16j + r: sub-block j of row r) as the factors.
template <int RX>
inline void scaledActivationSums(const KQuantRows& x, size_t i0, size_t superBlock, const uint8_t* scales, __m256 (&out)[RX][2]) {
  factoredActivationSums<RX>(x, i0, superBlock, [&](int j, int h) { return byteFloats(scales + 16 * j + 8 * h, true); }, out);
}


// ---- 32-value block types: a block column is 16 f16 scales then the quants ----

// Q8_0, Q4_0, IQ4_NL (packed as Q4_0), Q5_0, Q4_1 and Q5_1 share one tile kernel: 16 weight rows x RX
// activation rows from i0. Per block, each row's int32 dot is finished before its one scale multiply-add
// (and, for Q4_1 and Q5_1, one multiply-add of its min by the activation block's s).
enum class Block32Kind { kQ8_0, kQ4_0, kIQ4_NL, kQ5_0, kQ4_1, kQ5_1 };

template <Block32Kind kKind>
struct PackedBlock32 {
  static constexpr bool kEightBit = kKind == Block32Kind::kQ8_0;
  static constexpr bool kCodebook = kKind == Block32Kind::kIQ4_NL;
  // Unsigned values straight from the nibbles (and fifth bits): the u8 operand as they stand.
  static constexpr bool kNibbles = !kEightBit && !kCodebook;
  static constexpr bool kFifthBit = kKind == Block32Kind::kQ5_0 || kKind == Block32Kind::kQ5_1;
  static constexpr bool kHasMin = kKind == Block32Kind::kQ4_1 || kKind == Block32Kind::kQ5_1;
  static constexpr size_t kQuantsAt = kHasMin ? 64 : 32;
  static constexpr size_t kBlockBytes = kQuantsAt + (kEightBit ? 16 * 32 : 16 * 16) + (kFifthBit ? 8 * 8 : 0);
  // Pair vectors (of at most 2 * value * 127) that still add up within int16 before a vpmaddwd.
  static constexpr int kPairsPerSum = kFifthBit ? 4 : 8;
};

// 16 where bit j of `bits` is set, in byte j (j < 32): the fifth bits of half a packed Q5 vector.
inline __m256i sixteenWhereSet(uint32_t bits) {
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(int(bits)),
                                             _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                              2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i select = _mm256_set1_epi64x(int64_t(0x8040201008040201));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select), _mm256_set1_epi8(16));
}

template <Block32Kind kKind, int RX>
void packedBlock32Tile(const SignedRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
  using F = PackedBlock32<kKind>;
  const size_t blocks = x.cols / kQKBlock;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i flip = _mm256_set1_epi8(char(0x80));
  const __m256i grid = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4_NLValues)));
  __m256 acc[RX][2];
  for (int i = 0; i < RX; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < blocks; b++, p += F::kBlockBytes) {
    // Also at n = 1: AVX-512's Q8_0 kernel skips it there, but with twice the instructions per byte here,
    // reading ahead measured faster for Q8_0 decode too.
    readAhead(p, F::kBlockBytes);
    const uint8_t* quants = p + F::kQuantsAt;
    __m256i dots[RX][2];
    if constexpr (F::kNibbles) {
      // Unsigned values: int16 sums of kPairsPerSum pair vectors at a time, then -bias (8 * sum(q) for
      // Q4_0, 16 * sum(q) for Q5_0, 0 for the types with a min) cancels the offset.
      __m256i pairs[RX][2];
      for (int i = 0; i < RX; i++) {
        const __m256i bias = _mm256_set1_epi32(-x.bias[(i0 + i) * blocks + b]);
        dots[i][0] = dots[i][1] = bias;
        pairs[i][0] = pairs[i][1] = _mm256_setzero_si256();
      }
      for (int k = 0; k < 4; k++) {
        __m256i lo[2], hi[2];
        // Q5_0 / Q5_1: masks k and k + 4 (16 rows x 4 values each) after the nibbles; half h is bits 32h..
        // of each.
        uint64_t loBits = 0, hiBits = 0;
        if constexpr (F::kFifthBit) {
          std::memcpy(&loBits, quants + 16 * 16 + 8 * k, 8);
          std::memcpy(&hiBits, quants + 16 * 16 + 8 * (k + 4), 8);
        }
        for (int h = 0; h < 2; h++) {
          const __m256i v = packedHalf(quants + 64 * k, h);
          lo[h] = _mm256_and_si256(v, low);
          hi[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
          if constexpr (F::kFifthBit) {
            lo[h] = _mm256_or_si256(lo[h], sixteenWhereSet(uint32_t(loBits >> (32 * h))));
            hi[h] = _mm256_or_si256(hi[h], sixteenWhereSet(uint32_t(hiBits >> (32 * h))));
          }
        }
        for (int i = 0; i < RX; i++) {
          const int8_t* xq = x.q + (i0 + i) * x.cols + b * kQKBlock;
          const __m256i xl = broadcastDword(xq + 4 * k), xh = broadcastDword(xq + 16 + 4 * k);
          for (int h = 0; h < 2; h++) {
            pairs[i][h] = _mm256_add_epi16(pairs[i][h], _mm256_add_epi16(_mm256_maddubs_epi16(lo[h], xl), _mm256_maddubs_epi16(hi[h], xh)));
          }
        }
        if ((2 * (k + 1)) % F::kPairsPerSum == 0) {
          for (int i = 0; i < RX; i++) {
            for (int h = 0; h < 2; h++) {
              dots[i][h] = _mm256_add_epi32(dots[i][h], _mm256_madd_epi16(pairs[i][h], ones));
              pairs[i][h] = _mm256_setzero_si256();
            }
          }
        }
      }
    } else {
      // Signed weights with the sign trick; the activation bias is not used.
      for (int i = 0; i < RX; i++) dots[i][0] = dots[i][1] = _mm256_setzero_si256();
      constexpr int kVectors = F::kEightBit ? 8 : 4;
      for (int k = 0; k < kVectors; k++) {
        // w[0..1]: the halves paired with activation dword k; w[2..3] (IQ4_NL only): with dword k + 4.
        __m256i w[4], mag[4];
        constexpr int kParts = F::kEightBit ? 2 : 4;
        for (int h = 0; h < 2; h++) {
          const __m256i v = packedHalf(quants + 64 * k, h);
          if constexpr (F::kEightBit) {
            w[h] = _mm256_xor_si256(v, flip);
          } else {
            w[h] = _mm256_shuffle_epi8(grid, _mm256_and_si256(v, low));
            w[h + 2] = _mm256_shuffle_epi8(grid, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
          }
        }
        for (int m = 0; m < kParts; m++) mag[m] = _mm256_abs_epi8(w[m]);
        for (int i = 0; i < RX; i++) {
          const int8_t* xq = x.q + (i0 + i) * x.cols + b * kQKBlock;
          for (int m = 0; m < kParts; m++) {
            const __m256i xv = broadcastDword(xq + 4 * k + (m >= 2 ? 16 : 0));
            const __m256i pairs = _mm256_maddubs_epi16(mag[m], _mm256_sign_epi8(xv, w[m]));
            dots[i][m & 1] = _mm256_add_epi32(dots[i][m & 1], _mm256_madd_epi16(pairs, ones));
          }
        }
      }
    }
    const __m256 ws[2] = {halfFloats(p), halfFloats(p + 16)};
    for (int i = 0; i < RX; i++) {
      const __m256 dx = _mm256_set1_ps(x.d[(i0 + i) * blocks + b]);
      for (int h = 0; h < 2; h++) acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[i][h]), _mm256_mul_ps(ws[h], dx), acc[i][h]);
    }
    if constexpr (F::kHasMin) {
      const __m256 wm[2] = {halfFloats(p + 32), halfFloats(p + 48)};
      for (int i = 0; i < RX; i++) {
        const __m256 sx = _mm256_set1_ps(x.s[(i0 + i) * blocks + b]);
        for (int h = 0; h < 2; h++) acc[i][h] = _mm256_fmadd_ps(wm[h], sx, acc[i][h]);
      }
    }
  }
  storeRows<RX>(acc, out + i0 * outStride, outStride);
}

// ---- Q4_K and Q5_K: per super-block d, dmin, byte scales and mins, then 4 chunks of nibbles (Q5_K: and
// the fifth bits after them) ----

// 16 weight rows x RX activation rows from i0. Per super-block: the mins go against the activation sums
// in f32; per sub-block, runs of vpmaddubsw summed in int16 (8 for Q4_K, 4 for Q5_K) and one vpmaddwd per
// run with the sub-block's scale give int32 lanes that stay integer until the super-block ends. Q5_K's
// fifth bit for sub-block 2c + sub is bit 2c + sub of the qh byte in the same lane as the nibble.
template <int RX, bool kFifthBit>
void packedQ4_KLayoutTile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
  constexpr size_t kColumnBytes = kFifthBit ? kQ5_KPackedBytes : kQ4_KPackedBytes;
  constexpr int kRun = kFifthBit ? 4 : 8;
  const size_t supers = x.cols / kQKSuper;
  const size_t blocks = x.cols / kQKBlock, sums = x.cols / 16;
  const __m256i low = _mm256_set1_epi8(0x0f), fifth = _mm256_set1_epi8(0x10);
  __m256 acc[RX][2];
  for (int i = 0; i < RX; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kColumnBytes) {
    readAhead(p, kColumnBytes);
    const uint8_t* high = p + kQ5_KPackedHighAt;
    const uint8_t* scales = p + 64;
    const uint8_t* mins = scales + 8 * kPackRows;
    const uint8_t* quants = mins + 8 * kPackRows;
    __m256 minSums[RX][2];  // sum over sub-blocks j of min_j * (the activation sum of j)
    for (int i = 0; i < RX; i++) minSums[i][0] = minSums[i][1] = _mm256_setzero_ps();
    for (int j = 0; j < 8; j++) {
      const __m256 m[2] = {byteFloats(mins + 16 * j, false), byteFloats(mins + 16 * j + 8, false)};
      for (int i = 0; i < RX; i++) {
        const float* s = x.s + (i0 + i) * sums + b * 16 + 2 * j;
        const __m256 sj = _mm256_set1_ps(s[0] + s[1]);
        for (int h = 0; h < 2; h++) minSums[i][h] = _mm256_fmadd_ps(m[h], sj, minSums[i][h]);
      }
    }
    __m256i dots[RX][2];
    for (int i = 0; i < RX; i++) dots[i][0] = dots[i][1] = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++, quants += 32 * kPackRows) {
      // Sub-block 2c is in the low nibbles, 2c + 1 in the high ones.
      for (int sub = 0; sub < 2; sub++) {
        const uint8_t* sc = scales + 16 * (2 * c + sub);
        const __m256i scale[2] = {scaleWords(sc, false), scaleWords(sc + 8, false)};
        const int t = 2 * c + sub;  // the fifth bit's position in its qh byte
        for (int k0 = 0; k0 < 8; k0 += kRun) {
          __m256i pairs[RX][2];
          for (int i = 0; i < RX; i++) pairs[i][0] = pairs[i][1] = _mm256_setzero_si256();
          for (int k = k0; k < k0 + kRun; k++) {
            __m256i w[2];
            for (int h = 0; h < 2; h++) {
              const __m256i v = packedHalf(quants + 64 * k, h);
              w[h] = _mm256_and_si256(sub == 0 ? v : _mm256_srli_epi16(v, 4), low);
              if constexpr (kFifthBit) {
                // 16-bit shifts by at most 4 take bit 4 of each byte from bit t of the same byte.
                const __m256i qh = packedHalf(high + 64 * k, h);
                const __m256i moved = t <= 4 ? _mm256_slli_epi16(qh, 4 - t) : _mm256_srli_epi16(qh, t - 4);
                w[h] = _mm256_or_si256(w[h], _mm256_and_si256(moved, fifth));
              }
            }
            for (int i = 0; i < RX; i++) {
              const __m256i xv = broadcastDword(x.q + (i0 + i) * x.cols + b * kQKSuper + 64 * c + 32 * sub + 4 * k);
              for (int h = 0; h < 2; h++) pairs[i][h] = _mm256_add_epi16(pairs[i][h], _mm256_maddubs_epi16(w[h], xv));
            }
          }
          for (int i = 0; i < RX; i++)
            for (int h = 0; h < 2; h++) dots[i][h] = _mm256_add_epi32(dots[i][h], _mm256_madd_epi16(pairs[i][h], scale[h]));
        }
      }
    }
    for (int h = 0; h < 2; h++) {
      const __m256 d = halfFloats(p + 16 * h), dmin = halfFloats(p + 32 + 16 * h);
      for (int i = 0; i < RX; i++) {
        const __m256 dx = _mm256_set1_ps(x.d[(i0 + i) * blocks + b * 8]);
        acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[i][h]), _mm256_mul_ps(d, dx), acc[i][h]);
        acc[i][h] = _mm256_fnmadd_ps(dmin, minSums[i][h], acc[i][h]);
      }
    }
  }
  storeRows<RX>(acc, out + i0 * outStride, outStride);
}

// ---- Q6_K: per super-block f32 d, int8 scales, ql nibbles and qh bit pairs ----

// Run C of a half of a packed Q6_K super-block (values 128 half + 32C ..; ql vectors 0-7 for C even or 8-15
// for C odd, low nibbles for C < 2 or high ones, and qh bits 2C, 2C + 1 moved to bits 4-5) against RX
// activation rows: per sub-block two int16 sums of two vpmaddubsw each take the scale in vpmaddwd. C is a
// template argument so that the bit moves are fixed shifts: as a loop variable the compiler kept the run
// loop rolled and chose them by branching per vector.
template <int C, int RX>
inline void packedQ6_KRun(const KQuantRows& x, const uint8_t* ql, const uint8_t* qh, const uint8_t* scales, size_t i0, size_t b, int half,
                          __m256i (&dots)[RX][2]) {
  const __m256i low = _mm256_set1_epi8(0x0f), high = _mm256_set1_epi8(0x30);
  for (int sub = 0; sub < 2; sub++) {
    const uint8_t* sc = scales + 16 * (8 * half + 2 * C + sub);
    const __m256i scale[2] = {scaleWords(sc, true), scaleWords(sc + 8, true)};
    for (int kk = 0; kk < 4; kk += 2) {
      __m256i w[2][2];  // [vector k, k + 1][half of the rows]
      for (int e = 0; e < 2; e++) {
        const int k = 4 * sub + kk + e;
        for (int h = 0; h < 2; h++) {
          const __m256i l = packedHalf(ql + 64 * (8 * (C & 1) + k), h);
          const __m256i hb = packedHalf(qh + 64 * k, h);
          const __m256i lo = C < 2 ? _mm256_and_si256(l, low) : _mm256_and_si256(_mm256_srli_epi16(l, 4), low);
          const __m256i hi = C == 0 ? _mm256_slli_epi16(hb, 4) : C == 1 ? _mm256_slli_epi16(hb, 2) : C == 2 ? hb : _mm256_srli_epi16(hb, 2);
          w[e][h] = _mm256_or_si256(lo, _mm256_and_si256(hi, high));
        }
      }
      for (int i = 0; i < RX; i++) {
        const int8_t* xq = x.q + (i0 + i) * x.cols + b * kQKSuper + 128 * half + 32 * C + 16 * sub + 4 * kk;
        const __m256i xa = broadcastDword(xq), xb = broadcastDword(xq + 4);
        for (int h = 0; h < 2; h++) {
          const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(w[0][h], xa), _mm256_maddubs_epi16(w[1][h], xb));
          dots[i][h] = _mm256_add_epi32(dots[i][h], _mm256_madd_epi16(pairs, scale[h]));
        }
      }
    }
  }
}

// 16 weight rows x RX activation rows from i0. The -32 of each value goes against the activation sums in
// f32; the four runs of 32 values of each half go through packedQ6_KRun.
template <int RX>
void packedQ6_KTile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
  const size_t supers = x.cols / kQKSuper;
  const size_t blocks = x.cols / kQKBlock;
  __m256 acc[RX][2];
  for (int i = 0; i < RX; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kQ6_KPackedBytes) {
    readAhead(p, kQ6_KPackedBytes);
    const uint8_t* scales = p + kQ6_KPackedScalesAt;
    __m256 offsetSums[RX][2];
    scaledActivationSums<RX>(x, i0, b, scales, offsetSums);
    __m256i dots[RX][2];
    for (int i = 0; i < RX; i++) dots[i][0] = dots[i][1] = _mm256_setzero_si256();
    for (int half = 0; half < 2; half++) {
      const uint8_t* ql = p + kQ6_KPackedLowAt + 1024 * half;
      const uint8_t* qh = p + kQ6_KPackedHighAt + 512 * half;
      packedQ6_KRun<0, RX>(x, ql, qh, scales, i0, b, half, dots);
      packedQ6_KRun<1, RX>(x, ql, qh, scales, i0, b, half, dots);
      packedQ6_KRun<2, RX>(x, ql, qh, scales, i0, b, half, dots);
      packedQ6_KRun<3, RX>(x, ql, qh, scales, i0, b, half, dots);
    }
    for (int h = 0; h < 2; h++) {
      const __m256 d = _mm256_loadu_ps(reinterpret_cast<const float*>(p) + 8 * h);
      const __m256 offset = _mm256_mul_ps(d, _mm256_set1_ps(-32.0f));
      for (int i = 0; i < RX; i++) {
        const __m256 dx = _mm256_set1_ps(x.d[(i0 + i) * blocks + b * 8]);
        acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[i][h]), _mm256_mul_ps(d, dx), acc[i][h]);
        acc[i][h] = _mm256_fmadd_ps(offset, offsetSums[i][h], acc[i][h]);
      }
    }
  }
  storeRows<RX>(acc, out + i0 * outStride, outStride);
}

// ---- IQ4_XS: per super-block f32 d, int8 scales per sub-block of 32, then 8 chunks of nibbles ----

// 16 weight rows x RX activation rows from i0. Each sub-block's nibbles go through the codebook (one byte
// shuffle per 128-bit lane) and take the sign trick; every pair vector takes the sub-block's scale in its
// own vpmaddwd, since two pairs of up to 2 * 127 * 127 would not fit in int16.
template <int RX>
void packedIQ4_XSTile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
  const size_t supers = x.cols / kQKSuper;
  const size_t blocks = x.cols / kQKBlock;
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i grid = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4_NLValues)));
  __m256 acc[RX][2];
  for (int i = 0; i < RX; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kIQ4_XSPackedBytes) {
    readAhead(p, kIQ4_XSPackedBytes);
    const uint8_t* scales = p + kIQ4_XSPackedScalesAt;
    const uint8_t* quants = p + kIQ4_XSPackedQuantsAt;
    __m256i dots[RX][2];
    for (int i = 0; i < RX; i++) dots[i][0] = dots[i][1] = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++, quants += 16 * kPackRows) {
      const __m256i scale[2] = {scaleWords(scales + 16 * j, true), scaleWords(scales + 16 * j + 8, true)};
      for (int k = 0; k < 4; k++) {
        // w[0..1]: the halves paired with activation dword k (low nibbles); w[2..3]: with dword k + 4.
        __m256i w[4], mag[4];
        for (int h = 0; h < 2; h++) {
          const __m256i v = packedHalf(quants + 64 * k, h);
          w[h] = _mm256_shuffle_epi8(grid, _mm256_and_si256(v, low));
          w[h + 2] = _mm256_shuffle_epi8(grid, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
        }
        for (int m = 0; m < 4; m++) mag[m] = _mm256_abs_epi8(w[m]);
        for (int i = 0; i < RX; i++) {
          const int8_t* xq = x.q + (i0 + i) * x.cols + b * kQKSuper + kQKBlock * j;
          for (int m = 0; m < 4; m++) {
            const __m256i xv = broadcastDword(xq + 4 * k + (m >= 2 ? 16 : 0));
            const __m256i pairs = _mm256_maddubs_epi16(mag[m], _mm256_sign_epi8(xv, w[m]));
            dots[i][m & 1] = _mm256_add_epi32(dots[i][m & 1], _mm256_madd_epi16(pairs, scale[m & 1]));
          }
        }
      }
    }
    for (int h = 0; h < 2; h++) {
      const __m256 d = _mm256_loadu_ps(reinterpret_cast<const float*>(p) + 8 * h);
      for (int i = 0; i < RX; i++) {
        const __m256 dx = _mm256_set1_ps(x.d[(i0 + i) * blocks + b * 8]);
        acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[i][h]), _mm256_mul_ps(d, dx), acc[i][h]);
      }
    }
  }
  storeRows<RX>(acc, out + i0 * outStride, outStride);
}

// ---- Q3_K and Q2_K: sub-blocks of 16 values, quants in runs of 32 (qs bits 2s..2s+1 per half) ----

// One super-block's integer dots for 16 weight rows x RX activation rows from i0, per row half: for each
// run t of 32 values and each of its two sub-blocks, the four vpmaddubsw of the sub-block are summed in
// int16, then one vpmaddwd by the sub-block's scale words. weights(k, h, t): half h of quant vector k
// (k < 8; 0-3 for sub-block 2t, 4-7 for 2t + 1) of run t as unsigned values; scaleWords(j, h): sub-block
// j's scales for rows 8h..8h+7.
template <int RX, class Weights, class ScaleWords>
inline void subBlockDots(const KQuantRows& x, size_t i0, size_t superBlock, Weights weights, ScaleWords scaleWords,
                         __m256i (&dots)[RX][2]) {
  for (int i = 0; i < RX; i++) dots[i][0] = dots[i][1] = _mm256_setzero_si256();
  for (int t = 0; t < 8; t++) {
    for (int sub = 0; sub < 2; sub++) {
      const __m256i scale[2] = {scaleWords(2 * t + sub, 0), scaleWords(2 * t + sub, 1)};
      __m256i pairs[RX][2];
      for (int i = 0; i < RX; i++) pairs[i][0] = pairs[i][1] = _mm256_setzero_si256();
      for (int k = 4 * sub; k < 4 * sub + 4; k++) {
        const __m256i w[2] = {weights(k, 0, t), weights(k, 1, t)};
        for (int i = 0; i < RX; i++) {
          const __m256i xv = broadcastDword(x.q + (i0 + i) * x.cols + superBlock * kQKSuper + 32 * t + 4 * k);
          for (int h = 0; h < 2; h++) pairs[i][h] = _mm256_add_epi16(pairs[i][h], _mm256_maddubs_epi16(w[h], xv));
        }
      }
      for (int i = 0; i < RX; i++)
        for (int h = 0; h < 2; h++) dots[i][h] = _mm256_add_epi32(dots[i][h], _mm256_madd_epi16(pairs[i][h], scale[h]));
    }
  }
}

// Q3_K: per super-block f32 d, int8 scales per sub-block of 16, 2-bit qs and hmask third bits.
// 16 weight rows x RX activation rows from i0. The -4 of each value goes against the activation sums in
// f32, as Q6_K's -32; per run t of 32 values (half h, shift s) the 8 vectors of value + 4 are assembled
// from qs (bits 2s..2s+1) and hmask (bit t to bit 2), and each sub-block's four vpmaddubsw are summed in
// int16 before one vpmaddwd with its scale.
template <int RX>
void packedQ3_KTile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
  const size_t supers = x.cols / kQKSuper;
  const size_t blocks = x.cols / kQKBlock;
  const __m256i lowBits = _mm256_set1_epi8(0x03), thirdBit = _mm256_set1_epi8(0x04);
  __m256 acc[RX][2];
  for (int i = 0; i < RX; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kQ3_KPackedBytes) {
    readAhead(p, kQ3_KPackedBytes);
    const uint8_t* scales = p + kQ3_KPackedScalesAt;
    const uint8_t* hmask = p + kQ3_KPackedHighAt;
    __m256 offsetSums[RX][2];
    scaledActivationSums<RX>(x, i0, b, scales, offsetSums);
    __m256i dots[RX][2];
    subBlockDots<RX>(
        x, i0, b,
        [&](int k, int h, int t) {
          // 16-bit shifts by at most 6 (qs) and 5 (hmask) keep each byte's bits within the byte.
          const uint8_t* qs = p + kQ3_KPackedLowAt + 64 * 8 * (t / 4);
          const __m256i q = _mm256_and_si256(_mm256_srli_epi16(packedHalf(qs + 64 * k, h), 2 * (t % 4)), lowBits);
          const __m256i m = packedHalf(hmask + 64 * k, h);
          const __m256i third = t <= 2 ? _mm256_slli_epi16(m, 2 - t) : _mm256_srli_epi16(m, t - 2);
          return _mm256_or_si256(q, _mm256_and_si256(third, thirdBit));
        },
        [&](int j, int h) { return scaleWords(scales + 16 * j + 8 * h, true); }, dots);
    for (int h = 0; h < 2; h++) {
      const __m256 d = _mm256_loadu_ps(reinterpret_cast<const float*>(p) + 8 * h);
      const __m256 offset = _mm256_mul_ps(d, _mm256_set1_ps(-4.0f));
      for (int i = 0; i < RX; i++) {
        const __m256 dx = _mm256_set1_ps(x.d[(i0 + i) * blocks + b * 8]);
        acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[i][h]), _mm256_mul_ps(d, dx), acc[i][h]);
        acc[i][h] = _mm256_fmadd_ps(offset, offsetSums[i][h], acc[i][h]);
      }
    }
  }
  storeRows<RX>(acc, out + i0 * outStride, outStride);
}

// Q2_K: f16 d and dmin, a scale and a min nibble per sub-block of 16, 2-bit qs.

// The 8 bytes at p (one per row) shifted right by `shift` and masked to their low nibble, as vpmaddwd's
// scale operand (shift 0: the sub-block scales) or as f32 (shift 4: the mins).
inline __m256i nibbleLanes(const uint8_t* p, int shift) {
  const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  return _mm256_and_si256(_mm256_srli_epi32(v, shift), _mm256_set1_epi32(0x0f));
}
inline __m256i nibbleWords(const uint8_t* p) { return wordPairs(nibbleLanes(p, 0)); }

// Values 0..3: the four pair vectors of a sub-block add up in int16 (at most 4 * 2 * 3 * 127) before
// one vpmaddwd by the sub-block's scales; the mins meet the activation sums in float first
// (factoredActivationSums).
template <int RX>
void packedQ2_KTile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
  const size_t supers = x.cols / kQKSuper;
  const size_t blocks = x.cols / kQKBlock;
  const __m256i lowBits = _mm256_set1_epi8(0x03);
  __m256 acc[RX][2];
  for (int i = 0; i < RX; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const uint8_t* p = group;
  for (size_t b = 0; b < supers; b++, p += kQ2_KPackedBytes) {
    readAhead(p, kQ2_KPackedBytes);
    const uint8_t* scales = p + kQ2_KPackedScalesAt;
    __m256 minSums[RX][2];
    factoredActivationSums<RX>(x, i0, b, [&](int j, int h) { return _mm256_cvtepi32_ps(nibbleLanes(scales + 16 * j + 8 * h, 4)); }, minSums);
    for (int h = 0; h < 2; h++) {
      const __m256 dmin = halfFloats(p + 2 * kPackRows + 16 * h);
      for (int i = 0; i < RX; i++) acc[i][h] = _mm256_fnmadd_ps(dmin, minSums[i][h], acc[i][h]);
    }
    __m256i dots[RX][2];
    subBlockDots<RX>(
        x, i0, b,
        [&](int k, int h, int t) {
          const uint8_t* qs = p + kQ2_KPackedQuantsAt + 64 * 8 * (t / 4);
          return _mm256_and_si256(_mm256_srli_epi16(packedHalf(qs + 64 * k, h), 2 * (t % 4)), lowBits);
        },
        [&](int j, int h) { return nibbleWords(scales + 16 * j + 8 * h); }, dots);
    for (int h = 0; h < 2; h++) {
      const __m256 d = halfFloats(p + 16 * h);
      for (int i = 0; i < RX; i++) {
        const __m256 dx = _mm256_set1_ps(x.d[(i0 + i) * blocks + b * 8]);
        acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[i][h]), _mm256_mul_ps(d, dx), acc[i][h]);
      }
    }
  }
  storeRows<RX>(acc, out + i0 * outStride, outStride);
}

// ---- the loop over groups and activation tiles ----

// Activation rows in tiles of kPackedTileRows, then one of the remaining fewer (packed_group_loop.h).
constexpr int kPackedTileRows = 4;

template <class Tiles, class Rows>
void matmulPacked(const Rows& x, const uint8_t* w, const MatmulRange& range) {
  packedGroups<Tiles, kPackedTileRows>(x, w, Tiles::groupBytes(x.cols), range);
}

template <Block32Kind kKind>
struct Block32Tiles {
  static size_t groupBytes(size_t cols) { return cols / kQKBlock * PackedBlock32<kKind>::kBlockBytes; }
  template <int RX>
  static void tile(const SignedRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
    packedBlock32Tile<kKind, RX>(x, group, i0, out, outStride);
  }
};

template <bool kFifthBit>
struct Q4_KLayoutTiles {
  static size_t groupBytes(size_t cols) { return cols / kQKSuper * (kFifthBit ? kQ5_KPackedBytes : kQ4_KPackedBytes); }
  template <int RX>
  static void tile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
    packedQ4_KLayoutTile<RX, kFifthBit>(x, group, i0, out, outStride);
  }
};

struct Q6_KTiles {
  static size_t groupBytes(size_t cols) { return cols / kQKSuper * kQ6_KPackedBytes; }
  template <int RX>
  static void tile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
    packedQ6_KTile<RX>(x, group, i0, out, outStride);
  }
};

struct IQ4_XSTiles {
  static size_t groupBytes(size_t cols) { return cols / kQKSuper * kIQ4_XSPackedBytes; }
  template <int RX>
  static void tile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
    packedIQ4_XSTile<RX>(x, group, i0, out, outStride);
  }
};

struct Q3_KTiles {
  static size_t groupBytes(size_t cols) { return cols / kQKSuper * kQ3_KPackedBytes; }
  template <int RX>
  static void tile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
    packedQ3_KTile<RX>(x, group, i0, out, outStride);
  }
};

struct Q2_KTiles {
  static size_t groupBytes(size_t cols) { return cols / kQKSuper * kQ2_KPackedBytes; }
  template <int RX>
  static void tile(const KQuantRows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
    packedQ2_KTile<RX>(x, group, i0, out, outStride);
  }
};

// Every 32-value block type's packed matmul (avx2_kernels.cc names them for the kernel tables).
template <Block32Kind kKind>
void matmulBlock32Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulPacked<Block32Tiles<kKind>>(x, w, range);
}
void matmulQ4_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulPacked<Q4_KLayoutTiles<false>>(x, w, range);
}
void matmulQ5_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulPacked<Q4_KLayoutTiles<true>>(x, w, range);
}
void matmulQ6_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulPacked<Q6_KTiles>(x, w, range); }
void matmulIQ4_XSPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulPacked<IQ4_XSTiles>(x, w, range); }
void matmulQ3_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulPacked<Q3_KTiles>(x, w, range); }
void matmulQ2_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulPacked<Q2_KTiles>(x, w, range); }

}  // namespace
}  // namespace vserve
