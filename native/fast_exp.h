// A branch-free f32 exp for loops that should auto-vectorize (swiglu, attention softmax weights):
// std::exp is a scalar libm call per element.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

namespace vserve {

// exp(x) in f32, within a few ulp of std::exp for |x| <= 87 (x below -87 gives exp(-87) ~ 1.6e-38, not 0).
// exp(x) = 2^n * exp(r) with n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2] (ln 2 split in two
// for exactness), exp(r) by its degree-6 Taylor polynomial, 2^n built in the exponent bits.
inline float expApprox(float x) {
  x = std::min(87.0f, std::max(-87.0f, x));  // a branch unless -fno-trapping-math (binding.gyp)
  // Rounds to nearest by adding and subtracting 1.5 * 2^23 (nearbyint is a libm call without SSE4.1).
  const float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-6f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

}  // namespace vserve
