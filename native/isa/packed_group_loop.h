// The loop every packed matmul runs, on any ISA: each 16-row group of a weight's packed copy
// (packed_weights.h) meets the activation rows in tiles of kTileRows, then one tile of the fewer rows
// left. A format's Tiles policy gives the tile kernel, Tiles::tile<RX>(x, group, i0, out, outStride).
#pragma once
#include <cstddef>
#include <cstdint>

#include "../kernel_set.h"
#include "../packed_weights.h"

namespace vserve {

template <class Tiles, int RX, class Rows>
inline void packedGroupRows(const Rows& x, const uint8_t* group, size_t i0, float* out, size_t outStride) {
  for (; i0 + RX <= x.rows; i0 += RX) Tiles::template tile<RX>(x, group, i0, out, outStride);
  if constexpr (RX > 1) {
    if (i0 < x.rows) packedGroupRows<Tiles, RX - 1>(x, group, i0, out, outStride);
  }
}

/** The range's rows of the output from the packed copy `w`, whose groups are `groupBytes` apart. */
template <class Tiles, int kTileRows, class Rows>
inline void packedGroups(const Rows& x, const uint8_t* w, size_t groupBytes, const MatmulRange& range) {
  for (size_t r = range.rowBegin; r < range.rowEnd; r += kPackRows) {
    packedGroupRows<Tiles, kTileRows>(x, w + r / kPackRows * groupBytes, 0, range.out + r, range.outStride);
  }
}

}  // namespace vserve
