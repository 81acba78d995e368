// Floats rounded to f16 precision: with F16C a vector at a time, else by ggml_types.h's conversions
// (both round to nearest even, so the results are the same).
#include "half_rounding.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "ggml_types.h"

namespace vserve {
namespace {

void roundPortable(const float* x, size_t n, float* out) {
  for (size_t i = 0; i < n; i++) out[i] = roundToHalf(x[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx,f16c"))) void roundF16C(const float* x, size_t n, float* out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  roundPortable(x + i, n - i, out + i);
}
#endif

}  // namespace

void roundToHalfPrecision(const float* x, size_t n, float* out) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool f16c = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  if (f16c) return roundF16C(x, n, out);
#endif
  roundPortable(x, n, out);
}

}  // namespace vserve
