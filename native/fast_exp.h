// A branch-free f32 exp for loops that should auto-vectorize (swiglu, attention softmax weights):
// std::exp is a scalar libm call per element.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vserve {

// exp(x) in f32, within a few ulp of std::exp for |x| <= 87 (x below -87 gives exp(-87) ~ 1.6e-38, not 0).
// exp(x) = 2^n * exp(r) with n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2] (ln 2 split in two
// for exactness), exp(r) by its degree-6 Taylor polynomial, 2^n built in the exponent bits.
// The constants, shared with the SIMD forms of the same function in the ISA files (softmaxTile).
constexpr float kExpClamp = 87.0f;
constexpr float kLog2e = 1.44269504f;
constexpr float kLn2High = 0.693145751953125f;  // ln 2 = kLn2High + kLn2Low, the first exact in f32
constexpr float kLn2Low = 1.428606765330187e-6f;
// Taylor coefficients of exp(r), highest degree first (Horner order).
constexpr float kExpTaylor[7] = {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};

inline float expApprox(float x) {
  x = std::min(kExpClamp, std::max(-kExpClamp, x));  // a branch unless -fno-trapping-math (binding.gyp)
  // Rounds to nearest by adding and subtracting 1.5 * 2^23 (nearbyint is a libm call without SSE4.1).
  const float n = (x * kLog2e + 12582912.0f) - 12582912.0f;
  const float r = (x - n * kLn2High) - n * kLn2Low;
  float p = kExpTaylor[0];
  for (int i = 1; i < 7; i++) p = p * r + kExpTaylor[i];
  const int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// out[i] = silu(gate[i]) * up[i] with expApprox: the kernel sets' swiglu where llama.cpp's own exp is not
// reproduced.
inline void swigluScalar(float* out, const float* gate, const float* up, size_t len) {
  for (size_t i = 0; i < len; i++) {
    const float g = gate[i];
    out[i] = g / (1.0f + expApprox(-g)) * up[i];
  }
}

}  // namespace vserve
