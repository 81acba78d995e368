// The AVX-512 row-layout K-quant matmul driver: RW weight rows x RX activation rows of KQuantRows, each
// super-block decoded once per tile. Shared by the Q4_K / Q6_K kernels (avx512_kernels.cc) and the
// Q2_K / Q3_K / Q5_K / IQ4_XS ones (avx512_superblock_kernels.cc). A format K provides
//   kBytes; Weights, Acts; decode(blk, Weights&); load(x, row, b, Acts&); accumulate(acc, Weights, Acts)
// Internal linkage, as kquant_blocks.h explains.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "tile_grid.h"
#include "weight_prefetch.h"

namespace vserve {
namespace {

// Lane l -> l / 4 + first: spreads 4 (of 8 or 16) per-sub-block floats over 16 lanes.
inline __m512i quarterIndex(int first) {
  return _mm512_add_epi32(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), _mm512_set1_epi32(first));
}

// RW weight rows x RX activation rows: each super-block of the RW rows is decoded once per tile.
template <class K>
struct KQuantKernel : TileOperands<KQuantRows, uint8_t> {
  template <int RW, int RX>
  void tile(size_t i0, size_t r0) const {
    const size_t supers = x.cols / kQKSuper;
    const size_t rowBytes = supers * K::kBytes;
    __m512 acc[RW][RX];
    for (int j = 0; j < RW; j++)
      for (int i = 0; i < RX; i++) acc[j][i] = _mm512_setzero_ps();
    for (size_t b = 0; b < supers; b++) {
      typename K::Weights wt[RW];
      for (int j = 0; j < RW; j++) {
        const uint8_t* blk = w + (r0 + j) * rowBytes + b * K::kBytes;
        // Every cache line of the stream ahead, the super-blocks not being line-aligned.
        prefetchWeightLines(blk + kWeightPrefetchBytes, K::kBytes);
        K::decode(blk, wt[j]);
      }
      for (int i = 0; i < RX; i++) {
        typename K::Acts a;
        K::load(x, i0 + i, b, a);
        for (int j = 0; j < RW; j++) acc[j][i] = K::accumulate(acc[j][i], wt[j], a);
      }
    }
    for (int i = 0; i < RX; i++) {
      for (int j = 0; j < RW; j++) range.out[(i0 + i) * range.outStride + r0 + j] = _mm512_reduce_add_ps(acc[j][i]);
    }
  }
};

}  // namespace
}  // namespace vserve
