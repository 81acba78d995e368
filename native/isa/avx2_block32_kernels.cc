// AVX2 Q4_1 / Q5_0 / Q5_1 / IQ4_NL matmuls (Block32Kernels), compiled into the avx2 library.
//
// Each weight block is decoded to 32 bytes in element order. Signed values (Q5_0's q - 16, IQ4_NL's grid
// values, all within [-127, 127]) take the sign trick of the Q4_0 kernel, |w| * (q_x with w's sign), so
// vpmaddubsw cannot saturate; unsigned ones (Q4_1's nibbles, Q5_1's 0..31) go straight in as its u8
// operand. Q4_1 / Q5_1 add m * s_x per block (QuantizedRows::s) into lane 0 of the accumulator, so the
// final horizontal sum counts it once.
#include <immintrin.h>

#include <cstring>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "tile_grid.h"
#include "weight_prefetch.h"

namespace vserve {
namespace {

inline float horizontalSum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// The 32 nibbles of 16 bytes in element order: low nibbles are elements 0..15, high ones 16..31.
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(0x0f);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), mask), _mm_and_si128(packed, mask));
}

// 16 in byte j where bit j of the Q5 high-bit word at `qh` is set, else 0.
inline __m256i fifthBits(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  // Byte j takes byte j / 8 of the word, then keeps bit j % 8.
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(int(bits)),
                                             _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(16));
}

struct Q4_1Format {
  static constexpr int kBytes = kQ4_1Bytes;
  static constexpr bool kHasMin = true;   // unsigned quants, x = d * q + m
  static __m256i quants(const uint8_t* blk) { return nibbles(blk + 4); }
};

struct Q5_0Format {
  static constexpr int kBytes = kQ5_0Bytes;
  static constexpr bool kHasMin = false;  // signed quants q - 16
  static __m256i quants(const uint8_t* blk) {
    return _mm256_sub_epi8(_mm256_or_si256(nibbles(blk + 6), fifthBits(blk + 2)), _mm256_set1_epi8(16));
  }
};

struct Q5_1Format {
  static constexpr int kBytes = kQ5_1Bytes;
  static constexpr bool kHasMin = true;
  static __m256i quants(const uint8_t* blk) { return _mm256_or_si256(nibbles(blk + 8), fifthBits(blk + 4)); }
};

struct IQ4_NLFormat {
  static constexpr int kBytes = kIQ4_NLBytes;
  static constexpr bool kHasMin = false;  // signed grid values
  static __m256i quants(const uint8_t* blk) {
    const __m256i grid = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4_NLValues)));
    return _mm256_shuffle_epi8(grid, nibbles(blk + 2));
  }
};

template <class F>
struct Block32Kernel : TileOperands<QuantizedRows, uint8_t> {
  template <int RW, int RX>
  void tile(size_t i0, size_t r0) const {
    const size_t blocks = x.cols / kQKBlock;
    const size_t rowBytes = blocks * F::kBytes;
    const __m256i ones16 = _mm256_set1_epi16(1);
    const __m256i offset = _mm256_set1_epi8(char(0x80));
    __m256 acc[RW][RX];
    for (int j = 0; j < RW; j++)
      for (int i = 0; i < RX; i++) acc[j][i] = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
      __m256i wv[RW], wabs[RW];
      __m256 wd[RW], wm[RW];
      for (int j = 0; j < RW; j++) {
        const uint8_t* blk = w + (r0 + j) * rowBytes + b * F::kBytes;
        prefetchWeights(blk + kWeightPrefetchBytes);
        wv[j] = F::quants(blk);
        wd[j] = _mm256_set1_ps(_cvtsh_ss(loadU16(blk)));
        if constexpr (F::kHasMin) {
          wm[j] = _mm256_set1_ps(_cvtsh_ss(loadU16(blk + 2)));
        } else {
          wabs[j] = _mm256_abs_epi8(wv[j]);
        }
      }
      for (int i = 0; i < RX; i++) {
        const size_t row = i0 + i;
        const __m256i xq = _mm256_xor_si256(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + row * x.cols + b * kQKBlock)), offset);
        const __m256 xd = _mm256_set1_ps(x.d[row * blocks + b]);
        if constexpr (F::kHasMin) {
          const __m256 xs = _mm256_setr_ps(x.s[row * blocks + b], 0, 0, 0, 0, 0, 0, 0);  // lane 0 only
          for (int j = 0; j < RW; j++) {
            const __m256 dots = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(wv[j], xq), ones16));
            acc[j][i] = _mm256_fmadd_ps(wm[j], xs, _mm256_fmadd_ps(dots, _mm256_mul_ps(wd[j], xd), acc[j][i]));
          }
        } else {
          for (int j = 0; j < RW; j++) {
            const __m256i pairs = _mm256_maddubs_epi16(wabs[j], _mm256_sign_epi8(xq, wv[j]));
            const __m256 dots = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones16));
            acc[j][i] = _mm256_fmadd_ps(dots, _mm256_mul_ps(wd[j], xd), acc[j][i]);
          }
        }
      }
    }
    for (int i = 0; i < RX; i++)
      for (int j = 0; j < RW; j++) range.out[(i0 + i) * range.outStride + r0 + j] = horizontalSum(acc[j][i]);
  }
};

template <class F>
void matmulBlock32(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<2, 3>(Block32Kernel<F>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}

}  // namespace

const Block32Kernels* avx2Block32Kernels() {
  static const Block32Kernels kKernels{matmulBlock32<Q4_1Format>, matmulBlock32<Q5_0Format>, matmulBlock32<Q5_1Format>,
                                       matmulBlock32<IQ4_NLFormat>, avx2MatmulIQ4_NLPacked, avx2MatmulQ5_0Packed,
                                       avx2MatmulQ4_1Packed, avx2MatmulQ5_1Packed};
  return &kKernels;
}

}  // namespace vserve
