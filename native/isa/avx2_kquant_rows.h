// The AVX2 row-layout K-quant matmul: a decoded super-block (KQuantWeights) against KQuantRows
// activations, tiled over weight and activation rows. Shared by the Q4_K / Q6_K kernels
// (avx2_kernels.cc) and the Q2_K / Q3_K / Q5_K / IQ4_XS ones (avx2_superblock_kernels.cc), each of
// which only decodes its layout into KQuantWeights. Internal linkage, as kquant_blocks.h explains.
//
// Unsigned weights (nibbles, 6-bit values) are vpmaddubsw's u8 operand and the signed activations the
// other: int16 pair sums of at most 2 * 63 * 127, no saturation. vpmaddwd with the sub-block's integer
// scale then gives int32 sums of 4 values; one f32 multiply-add per 32 values applies the activation
// block scale, and d and the sub-block offsets (mins, or the bias of unsigned-stored quants, through
// the activation sums) come once per super-block.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "avx2_attention_tiles.h"
#include "tile_grid.h"
#include "weight_prefetch.h"

namespace vserve {
namespace {

// A super-block of one weight row, decoded. Vector v holds values 32v..32v+31; its int16 scale lanes
// hold the scale of the sub-block of each lane's values.
struct KQuantWeights {
  __m256i q[8];
  __m256i scale[8];
  __m256 offsets[2];  // lane l of the 16: the offset factor paired with activation sum l
  __m256 d;
};

// Word j of `words` (in both 128-bit lanes) in every int16 lane of the low half, word k in the high half.
inline __m256i spreadWords(__m256i words, int j, int k) {
  const __m256i pick = _mm256_setr_m128i(_mm_set1_epi16(short(0x0100 + 0x0202 * j)), _mm_set1_epi16(short(0x0100 + 0x0202 * k)));
  return _mm256_shuffle_epi8(words, pick);
}

// acc + one activation row's dot with a decoded super-block. Signed quants (kSigned: IQ4_XS's table
// values) take the sign trick, |w| * (x with w's sign), keeping vpmaddubsw's pair sums within int16.
template <bool kSigned = false>
inline __m256 kquantDot(const KQuantWeights& w, const KQuantRows& x, size_t row, size_t b, __m256 acc) {
  const int8_t* xq = x.q + row * x.cols + b * kQKSuper;
  const float* xd = x.d + row * (x.cols / kQKBlock) + b * 8;
  const float* xs = x.s + row * (x.cols / 16) + b * 16;
  __m256 sum = _mm256_setzero_ps();
  for (int v = 0; v < 8; v++) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * v));
    const __m256i pairs = kSigned ? _mm256_maddubs_epi16(_mm256_abs_epi8(w.q[v]), _mm256_sign_epi8(xv, w.q[v]))
                                  : _mm256_maddubs_epi16(w.q[v], xv);
    sum = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, w.scale[v])), _mm256_broadcast_ss(xd + v), sum);
  }
  acc = _mm256_fmadd_ps(sum, w.d, acc);
  acc = _mm256_fmadd_ps(w.offsets[0], _mm256_loadu_ps(xs), acc);
  return _mm256_fmadd_ps(w.offsets[1], _mm256_loadu_ps(xs + 8), acc);
}

// RW weight rows x RX activation rows: each super-block of the RW rows is decoded once per tile.
template <class K, bool kSigned = false>
struct KQuantKernel : TileOperands<KQuantRows, uint8_t> {
  template <int RW, int RX>
  void tile(size_t i0, size_t r0) const {
    const size_t supers = x.cols / kQKSuper;
    const size_t rowBytes = supers * K::kBytes;
    __m256 acc[RW][RX];
    for (int j = 0; j < RW; j++)
      for (int i = 0; i < RX; i++) acc[j][i] = _mm256_setzero_ps();
    for (size_t b = 0; b < supers; b++) {
      for (int j = 0; j < RW; j++) {
        const uint8_t* blk = w + (r0 + j) * rowBytes + b * K::kBytes;
        // Every cache line of the stream ahead, the super-blocks not being line-aligned.
        prefetchWeightLines(blk + kWeightPrefetchBytes, K::kBytes);
        KQuantWeights wt;
        K::decode(blk, wt);
        for (int i = 0; i < RX; i++) acc[j][i] = kquantDot<kSigned>(wt, x, i0 + i, b, acc[j][i]);
      }
    }
    for (int i = 0; i < RX; i++)
      for (int j = 0; j < RW; j++) range.out[(i0 + i) * range.outStride + r0 + j] = hsum(acc[j][i]);
  }
};

}  // namespace
}  // namespace vserve
