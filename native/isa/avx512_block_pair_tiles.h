// The tile driver of the AVX-512 matmuls on 32-value blocks (Q8_0 / Q4_0 on the GGUF layout, and the
// Block32Kernels types): RW weight rows by RX activation rows, two blocks per step and the lone last
// block alone. What a step does to one (pair of) block(s) is the kernel's own: Step::run<F, RW, RX>,
// given each activation row's quants, scales d and Q8_1 sums s (QuantizedRows).
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "tile_grid.h"

namespace vserve {

template <class F, class Step>
struct BlockPairTile : TileOperands<QuantizedRows, uint8_t> {
  template <int RW, int RX>
  void tile(size_t i0, size_t r0) const {
    const size_t blocks = x.cols / kQKBlock;
    const size_t rowBytes = blocks * F::kBytes;
    __m512 acc[RW][RX];
    const uint8_t* wr[RW];
    const uint8_t* xq[RX];
    const float* xd[RX];
    const float* xs[RX];
    for (int j = 0; j < RW; j++) {
      wr[j] = w + (r0 + j) * rowBytes;
      for (int i = 0; i < RX; i++) acc[j][i] = _mm512_setzero_ps();
    }
    for (int i = 0; i < RX; i++) {
      xq[i] = x.q + (i0 + i) * x.cols;
      xd[i] = x.d + (i0 + i) * blocks;
      xs[i] = x.s + (i0 + i) * blocks;
    }
    size_t b = 0;
    for (; b + 2 <= blocks; b += 2) Step::template run<F, RW, RX>(acc, wr, xq, xd, xs, b, true);
    if (b < blocks) Step::template run<F, RW, RX>(acc, wr, xq, xd, xs, b, false);
    for (int i = 0; i < RX; i++) {
      for (int j = 0; j < RW; j++) range.out[(i0 + i) * range.outStride + r0 + j] = _mm512_reduce_add_ps(acc[j][i]);
    }
  }
};

template <class F, class Step>
void matmulBlockPairs(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<4, 4>(BlockPairTile<F, Step>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}

}  // namespace vserve
