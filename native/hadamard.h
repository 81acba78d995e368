// The rotation a cache may store K and V in (src/kv/hadamard.ts explains it): a normalized Walsh-Hadamard
// transform of each block of `block` values (the largest power of two dividing the head size), in f32
// step by step so that the reference backend computes the same bits.
#pragma once
#include <cmath>
#include <cstddef>

namespace vserve {

inline size_t hadamardBlock(size_t headDim) { return headDim & (~headDim + 1); }

inline void hadamardInPlace(float* x, size_t n, size_t block) {
  const float scale = float(1.0 / std::sqrt(double(block)));
  for (size_t b = 0; b < n; b += block) {
    float* y = x + b;
    for (size_t len = 1; len < block; len <<= 1) {
      for (size_t i = 0; i < block; i += 2 * len) {
        for (size_t j = i; j < i + len; j++) {
          const float u = y[j], v = y[j + len];
          y[j] = u + v;
          y[j + len] = u - v;
        }
      }
    }
    for (size_t i = 0; i < block; i++) y[i] = y[i] * scale;
  }
}

}  // namespace vserve
