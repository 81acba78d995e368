#include "gelu.h"

#include <cmath>
#include <vector>

namespace vserve {
namespace {

// The tanh approximation in f32, its operations in the order llama.cpp's formula gives them.
float geluTanhF32(float x) {
  constexpr float kCoefA = 0.044715f;
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  const float inner = kSqrt2OverPi * x * (1.0f + kCoefA * x * x);
  return 0.5f * x * (1.0f + std::tanh(inner));
}

}  // namespace

const float* geluTable() {
  static const std::vector<float> table = [] {
    std::vector<float> t(1 << 16);
    for (uint32_t h = 0; h < t.size(); h++) t[h] = roundToHalf(geluTanhF32(halfToFloat(uint16_t(h))));
    return t;
  }();
  return table.data();
}

}  // namespace vserve
