// Register-tiled loops shared by the SIMD kernels. A kernel object provides
//   template <int RW, int RX> void tile(size_t xRow, size_t wRow) const;
// computing the RW x RX block of outputs for weight rows [wRow, wRow + RW) and activation rows
// [xRow, xRow + RX). tileGrid covers a whole range with the largest tiles that fit and smaller ones
// for the edges, so every size works and the common sizes use the full register tile.
#pragma once
#include <cstddef>

#include "../kernel_set.h"

namespace vserve {

// What every tiled kernel works on: activation rows, the weight matrix and where outputs go.
template <class Rows, class WeightElement>
struct TileOperands {
  const Rows& x;
  const WeightElement* w;
  const MatmulRange& range;
};

template <int RW, int RX, class Kernel>
inline void tileActivationRows(const Kernel& k, size_t xRow, size_t xRows, size_t wRow) {
  for (; xRow + RX <= xRows; xRow += RX) k.template tile<RW, RX>(xRow, wRow);
  if constexpr (RX > 1) {
    if (xRow < xRows) tileActivationRows<RW, RX - 1>(k, xRow, xRows, wRow);
  }
}

template <int RW, int RX, class Kernel>
inline void tileGrid(const Kernel& k, size_t xRowBegin, size_t xRowEnd, size_t wRow, size_t wRowEnd) {
  for (; wRow + RW <= wRowEnd; wRow += RW) tileActivationRows<RW, RX>(k, xRowBegin, xRowEnd, wRow);
  if constexpr (RW > 1) {
    if (wRow < wRowEnd) tileGrid<RW - 1, RX>(k, xRowBegin, xRowEnd, wRow, wRowEnd);
  }
}

template <int RW, int RX, class Kernel>
inline void tileGrid(const Kernel& k, size_t xRows, size_t wRow, size_t wRowEnd) {
  tileGrid<RW, RX>(k, 0, xRows, wRow, wRowEnd);
}

}  // namespace vserve
