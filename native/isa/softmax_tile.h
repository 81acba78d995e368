// One tile's step of online softmax, and the sampler's weights, written once in plain C++ for the kernel
// sets without a SIMD version (portable, NEON); the AVX2 and AVX-512 files have their own. See
// KernelSet::softmaxTile and KernelSet::expWeights.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "../fast_exp.h"

namespace vserve {

inline void softmaxTileScalar(float* scores, size_t heads, size_t stride, size_t count, float* max, float* sum,
                              float* correction) {
  for (size_t h = 0; h < heads; h++) {
    float* s = scores + h * stride;
    float blockMax = -INFINITY;
    for (size_t p = 0; p < count; p++) blockMax = std::max(blockMax, s[p]);
    const float newMax = std::max(max[h], blockMax);
    correction[h] = newMax > max[h] && sum[h] > 0.0f ? std::exp(max[h] - newMax) : 1.0f;
    sum[h] *= correction[h];
    max[h] = newMax;
    // The weights in their own loop so it vectorizes; summed separately because a vectorized f32 sum
    // would need -ffast-math.
    for (size_t p = 0; p < count; p++) s[p] = expApprox(s[p] - newMax);
    for (size_t p = 0; p < count; p++) sum[h] += s[p];
  }
}

inline float expWeightsScalar(const float* x, size_t count, float shift, float scale, float floor, float* out) {
  // The exp is taken for every value and then kept or not, so the loop has no branch and vectorizes.
  for (size_t i = 0; i < count; i++) {
    const float w = expApprox((x[i] - shift) * scale);
    out[i] = x[i] >= floor && x[i] > -INFINITY ? w : 0.0f;
  }
  float sum = 0;
  for (size_t i = 0; i < count; i++) sum += out[i];
  return sum;
}

}  // namespace vserve
