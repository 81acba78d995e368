// Floats rounded to the nearest f16 value, kept as f32.
#pragma once

#include <cstddef>

namespace vserve {

// out[i] = x[i] rounded to f16 (nearest, ties to even; beyond f16's range: infinity). out may be x.
void roundToHalfPrecision(const float* x, size_t n, float* out);

}  // namespace vserve
