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

// Asks for the line holding *p in L1. On x86 as an asm statement: GCC 12 dropped the __builtin_prefetch
// calls from the value loop of the q8_0/q4_0 kernels (their split `p < nextCount` loops kept none).
inline void prefetchLine(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p);
#endif
}

// Prefetches the 64-byte lines that elements [i, i + n) of a row begin, counting lines from the row's
// start (element 0): one prefetch per line however the loops step through it.
template <class T>
inline void prefetchLines(const T* row, size_t i, size_t n) {
  constexpr size_t kPerLine = 64 / sizeof(T);
  for (size_t j = (i + kPerLine - 1) / kPerLine * kPerLine; j < i + n; j += kPerLine) prefetchLine(row + j);
}

// A quantized block's lines: its first and last bytes, as blocks do not start on line boundaries.
inline void prefetchBlock(const uint8_t* blk, size_t bytes) {
  prefetchLine(blk);
  prefetchLine(blk + bytes - 1);
}

}  // namespace
}  // namespace vserve
