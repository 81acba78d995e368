// AVX-512 (VNNI) Q4_1 / Q5_0 / Q5_1 / IQ4_NL matmuls (Block32Kernels), compiled into the avx512 library.
//
// As the Q4_0 kernel: two blocks per 512-bit step, weights decoded to unsigned bytes as the u8 side of
// vpdpbusd against the signed activations. The unsigned forms carry an offset (Q5_0: q = value + 16;
// IQ4_NL: grid value + 128), taken back out per activation block as offset * sum(q_x), an activation-side
// term shared by every weight row of a tile; Q4_1 / Q5_1 quants are unsigned as they are, and their
// m * s_x per block (QuantizedRows::s) goes into the first lane of the block's half of the accumulator,
// so the final reduction counts it once.
#include <immintrin.h>

#include <cstring>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "avx512_block_pair_tiles.h"
#include "tile_grid.h"
#include "weight_prefetch.h"

namespace vserve {
namespace {

// The nibbles of two blocks (quants at qa and qb, 16 bytes each) in element order: 128-bit lanes 0 and 1
// are elements 0..15 and 16..31 of block a, lanes 2 and 3 those of block b (zero for a lone block).
inline __m512i nibblePair(const uint8_t* qa, const uint8_t* qb, bool pair) {
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qa));
  const __m128i b = pair ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(qb)) : _mm_setzero_si128();
  const __m512i spread = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3),
                                                  _mm512_castsi256_si512(_mm256_set_m128i(b, a)));
  const __m512i shifts = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4);
  return _mm512_and_si512(_mm512_srlv_epi64(spread, shifts), _mm512_set1_epi8(0x0f));
}

// 16 in byte p where element p of the pair (as nibblePair lays them out) has its Q5 fifth bit set: the
// two little-endian qh words, side by side, are exactly that byte mask.
inline __m512i fifthBitPair(const uint8_t* qha, const uint8_t* qhb, bool pair) {
  uint32_t a, b = 0;
  std::memcpy(&a, qha, 4);
  if (pair) std::memcpy(&b, qhb, 4);
  return _mm512_maskz_mov_epi8(__mmask64(uint64_t(a) | uint64_t(b) << 32), _mm512_set1_epi8(16));
}

// The f16 at byte `at` of two blocks, in lanes 0-7 (block a) and 8-15 (block b, zero for a lone block).
template <int kBytes>
inline __m512 halfPair(const uint8_t* blk, int at, bool pair) {
  const __m128i lo = _mm_set1_epi16(short(loadU16(blk + at)));
  const __m128i hi = pair ? _mm_set1_epi16(short(loadU16(blk + kBytes + at))) : _mm_setzero_si128();
  return _mm512_cvtph_ps(_mm256_set_m128i(hi, lo));
}

// Formats: quants(blk, pair) gives the unsigned quants of two blocks; value = d * (u - kOffset) + m.
struct Q4_1Format {
  static constexpr int kBytes = kQ4_1Bytes;
  static constexpr bool kHasMin = true;
  static constexpr int kOffset = 0;
  static __m512i quants(const uint8_t* blk, bool pair) { return nibblePair(blk + 4, blk + kBytes + 4, pair); }
};

struct Q5_0Format {
  static constexpr int kBytes = kQ5_0Bytes;
  static constexpr bool kHasMin = false;
  static constexpr int kOffset = 16;
  static __m512i quants(const uint8_t* blk, bool pair) {
    return _mm512_or_si512(nibblePair(blk + 6, blk + kBytes + 6, pair), fifthBitPair(blk + 2, blk + kBytes + 2, pair));
  }
};

struct Q5_1Format {
  static constexpr int kBytes = kQ5_1Bytes;
  static constexpr bool kHasMin = true;
  static constexpr int kOffset = 0;
  static __m512i quants(const uint8_t* blk, bool pair) {
    return _mm512_or_si512(nibblePair(blk + 8, blk + kBytes + 8, pair), fifthBitPair(blk + 4, blk + kBytes + 4, pair));
  }
};

struct IQ4_NLFormat {
  static constexpr int kBytes = kIQ4_NLBytes;
  static constexpr bool kHasMin = false;
  static constexpr int kOffset = 128;
  static __m512i quants(const uint8_t* blk, bool pair) {
    // The grid shifted by 128 into 1..241, looked up per 128-bit lane.
    const __m128i grid = _mm_add_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4_NLValues)), _mm_set1_epi8(char(0x80)));
    return _mm512_shuffle_epi8(_mm512_broadcast_i32x4(grid), nibblePair(blk + 2, blk + kBytes + 2, pair));
  }
};

// One step (two blocks, or the lone last block) of an RW x RX tile.
template <class F, int RW, int RX>
inline void block32Step(__m512 (&acc)[RW][RX], const uint8_t* const (&wr)[RW], const uint8_t* const (&xq)[RX],
                        const float* const (&xd)[RX], const float* const (&xs)[RX], size_t b, bool pair) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  __m512i wv[RW];
  __m512 wd[RW], wm[RW];
  for (int j = 0; j < RW; j++) {
    const uint8_t* blk = wr[j] + b * F::kBytes;
    prefetchWeights(blk + kWeightPrefetchBytes);
    wv[j] = F::quants(blk, pair);
    wd[j] = halfPair<F::kBytes>(blk, 0, pair);
    if constexpr (F::kHasMin) wm[j] = halfPair<F::kBytes>(blk, 2, pair);
  }
  for (int i = 0; i < RX; i++) {
    const uint8_t* q = xq[i] + b * kQKBlock;
    const __m512i xu = pair ? _mm512_loadu_si512(q) : _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
    const __m512i xqs = _mm512_xor_si512(xu, flip);  // signed q_x
    const __m256 dHigh = pair ? _mm256_set1_ps(xd[i][b + 1]) : _mm256_setzero_ps();
    const __m512 xdv = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(xd[i][b])), dHigh, 1);
    if constexpr (F::kHasMin) {
      // s of block b in lane 0, of block b + 1 in lane 8 (the lanes halfPair gives its m), zeros elsewhere.
      const __m512 xsv = _mm512_maskz_mov_ps(__mmask16(0x0101),
          _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(xs[i][b])), _mm256_set1_ps(pair ? xs[i][b + 1] : 0.0f), 1));
      for (int j = 0; j < RW; j++) {
        const __m512 dots = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, wv[j], xqs));
        acc[j][i] = _mm512_fmadd_ps(wm[j], xsv, _mm512_fmadd_ps(dots, _mm512_mul_ps(wd[j], xdv), acc[j][i]));
      }
    } else {
      const __m512i xcorr = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(char(F::kOffset)), xqs));
      for (int j = 0; j < RW; j++) {
        const __m512i dotq = _mm512_dpbusd_epi32(xcorr, wv[j], xqs);
        acc[j][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dotq), _mm512_mul_ps(wd[j], xdv), acc[j][i]);
      }
    }
  }
}

struct Block32Step {
  template <class F, int RW, int RX>
  static void run(__m512 (&acc)[RW][RX], const uint8_t* const (&wr)[RW], const uint8_t* const (&xq)[RX],
                  const float* const (&xd)[RX], const float* const (&xs)[RX], size_t b, bool pair) {
    block32Step<F, RW, RX>(acc, wr, xq, xd, xs, b, pair);
  }
};

template <class F>
void matmulBlock32(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulBlockPairs<F, Block32Step>(x, w, range);
}

}  // namespace

const Block32Kernels* avx512Block32Kernels() {
  static const Block32Kernels kKernels{matmulBlock32<Q4_1Format>, matmulBlock32<Q5_0Format>, matmulBlock32<Q5_1Format>,
                                       matmulBlock32<IQ4_NLFormat>, avx512MatmulIQ4_NLPacked,
                                       avx512MatmulQ5_0Packed, avx512MatmulQ4_1Packed, avx512MatmulQ5_1Packed};
  return &kKernels;
}

}  // namespace vserve
