// KernelSet::addRows, written once in plain C++ and compiled into each ISA's file with its flags (the
// compiler vectorizes the fixed-width inner loops). A block of y stays in registers while every row is
// added, instead of one read-modify-write of y per row as with repeated axpy calls; blocks of 64 give
// several independent multiply-add chains.
#pragma once
#include <cstddef>

namespace vserve {

template <size_t kBlock>
inline size_t addRowBlocks(float* y, const float* x, size_t stride, const float* a, size_t rows, size_t i, size_t n) {
  for (; i + kBlock <= n; i += kBlock) {
    float acc[kBlock];
    for (size_t j = 0; j < kBlock; j++) acc[j] = y[i + j];
    for (size_t r = 0; r < rows; r++) {
      const float ar = a[r];
      const float* xr = x + r * stride + i;
      for (size_t j = 0; j < kBlock; j++) acc[j] += ar * xr[j];
    }
    for (size_t j = 0; j < kBlock; j++) y[i + j] = acc[j];
  }
  return i;
}

inline void addRowsGeneric(float* y, const float* x, size_t stride, const float* a, size_t rows, size_t n) {
  size_t i = addRowBlocks<64>(y, x, stride, a, rows, 0, n);
  i = addRowBlocks<16>(y, x, stride, a, rows, i, n);
  for (; i < n; i++) {
    float acc = y[i];
    for (size_t r = 0; r < rows; r++) acc += a[r] * x[r * stride + i];
    y[i] = acc;
  }
}

}  // namespace vserve
