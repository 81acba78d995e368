// Small pieces the attention tile kernels of every ISA share. Internal linkage (see kquant_blocks.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace vserve {
namespace {

// Calls f(std::integral_constant<int, n>) with n = heads, or kMax when heads >= kMax: the tile loops
// keep one register per head, so each head count is its own instantiation.
template <int kMax, int N = 1, class F>
inline void withHeadCount(size_t heads, F&& f) {
  if constexpr (N < kMax) {
    if (heads == size_t(N)) return f(std::integral_constant<int, N>{});
    return withHeadCount<kMax, N + 1>(heads, f);
  } else {
    f(std::integral_constant<int, kMax>{});
  }
}

// Prefetches the 64-byte lines that elements [i, i + n) of a row begin, counting lines from the row's
// start (element 0): one prefetch per line however the loops step through it.
template <class T>
inline void prefetchLines(const T* row, size_t i, size_t n) {
  constexpr size_t kPerLine = 64 / sizeof(T);
  for (size_t j = (i + kPerLine - 1) / kPerLine * kPerLine; j < i + n; j += kPerLine) __builtin_prefetch(row + j);
}

// A quantized block's lines: its first and last bytes, as blocks do not start on line boundaries.
inline void prefetchBlock(const uint8_t* blk, size_t bytes) {
  __builtin_prefetch(blk);
  __builtin_prefetch(blk + bytes - 1);
}

}  // namespace
}  // namespace vserve
