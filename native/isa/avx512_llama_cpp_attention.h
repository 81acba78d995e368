// Attention over f32 K/V rows as llama.cpp's AVX-512 build computes it without flash attention, to the
// bit: scores by its f32 dot product, softmax over the whole row, then each output value as a dot product
// of a V column with the weights; and its softmax of one row (an expert router's). Included by
// avx512_kernels.cc (KernelSet::attendF32InLlamaCppOrder, KernelSet::softmaxRowInLlamaCppOrder).
//
// llama.cpp's f32 dot product of length n (a multiple of 64) keeps four 16-lane vectors of fused
// multiply-add sums: value i goes to vector (i / 16) % 4, lane i % 16, in increasing i. It adds them as
// (v0 + v2) + (v1 + v3) and then the 16 lanes by halves (lane l + lane l + 8, then l + 4, l + 2, l + 1).
// Scores are that dot of query and key over the head size. For the output, the dot runs over positions,
// position p in vector (p / 16) % 4, lane p % 16 - counted from the cache's first cell, so a position's
// place depends on where it is, not on where the attended range starts. Its softmax takes exp (the same
// function as expAsLlamaCpp) of 16 scores at a time, adds each 16 by halves into an f64 sum, and
// multiplies every exp by the f32 reciprocal of that sum.
#pragma once
#include <immintrin.h>

#include <cmath>
#include <algorithm>
#include <cstddef>
#include <vector>

#include "../kernel_set.h"
#include "avx512_llama_cpp_order.h"

namespace vserve {
namespace {

// The sum of 16 lanes by halves, as the compiler's _mm512_reduce_add_ps builds it for llama.cpp.
inline float sumHalvingAsLlamaCpp(__m512 v) {
  const __m256 s8 = _mm256_add_ps(_mm512_extractf32x8_ps(v, 1), _mm512_castps512_ps256(v));
  const __m128 s4 = _mm_add_ps(_mm256_extractf128_ps(s8, 1), _mm256_castps256_ps128(s8));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// (v0 + v2) + (v1 + v3), lane by lane.
inline __m512 foldFourAsLlamaCpp(const __m512 (&v)[4]) {
  return _mm512_add_ps(_mm512_add_ps(v[0], v[2]), _mm512_add_ps(v[1], v[3]));
}

// llama.cpp's f32 dot product of a and b over n values (n a multiple of 64).
inline float dotAsLlamaCpp(const float* a, const float* b, size_t n) {
  __m512 v[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (size_t i = 0; i < n; i += 64) {
    for (int j = 0; j < 4; j++) v[j] = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16 * j), _mm512_loadu_ps(b + i + 16 * j), v[j]);
  }
  return sumHalvingAsLlamaCpp(foldFourAsLlamaCpp(v));
}

// Per-thread room for one call: scores then weights [heads][count], and the 64 partial outputs [64][d].
struct LlamaCppAttentionScratch {
  std::vector<float> weights;
  std::vector<float> partial;
};

// Softmax weights of one head's scores in place (s[i] is position first + i), as llama.cpp's softmax:
// returns nothing; s becomes exp(s - max) times the f32 reciprocal of their sum.
inline void softmaxAsLlamaCpp(float* s, size_t first, size_t count) {
  float max = -INFINITY;
  for (size_t i = 0; i < count; i++) max = std::max(max, s[i]);
  const __m512 vmax = _mm512_set1_ps(max);
  double sum = 0.0;
  // Chunks of 16 cells of the cache; lanes outside [first, first + count) are masked (exp gives 0).
  const size_t end = first + count;
  for (size_t c = first / 16 * 16; c < end; c += 16) {
    const size_t lo = std::max(c, first), hi = std::min(c + 16, end);
    const __mmask16 valid = __mmask16(((1u << (hi - c)) - 1) & ~((1u << (lo - c)) - 1));
    float* at = s + (std::ptrdiff_t(c) - std::ptrdiff_t(first));  // lane l: position c + l; masked lanes untouched
    const __m512 x = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), valid, at);
    const __m512 e = _mm512_maskz_mov_ps(valid, expAsLlamaCpp(_mm512_sub_ps(x, vmax)));
    _mm512_mask_storeu_ps(at, valid, e);
    sum += double(sumHalvingAsLlamaCpp(e));
  }
  const __m512 inv = _mm512_set1_ps(float(1.0 / sum));
  for (size_t i = 0; i < count; i += 16) {
    const __mmask16 m = count - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (count - i)) - 1);
    _mm512_mask_storeu_ps(s + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + i), inv));
  }
}

// out = softmax(x) over len values as llama.cpp's soft_max op computes a row (KernelSet::
// softmaxRowInLlamaCppOrder): its vector exp and a halving sum on each whole 16 values, expf on the rest,
// the sum in f64, then every exp times the f32 reciprocal of the sum. out may alias x.
void softmaxRowInLlamaCppOrder(float* out, const float* x, size_t len) {
  float max = -INFINITY;
  for (size_t i = 0; i < len; i++) max = std::max(max, x[i]);
  double sum = 0.0;
  size_t i = 0;
  for (; i + 16 <= len; i += 16) {
    const __m512 e = expAsLlamaCpp(_mm512_sub_ps(_mm512_loadu_ps(x + i), _mm512_set1_ps(max)));
    _mm512_storeu_ps(out + i, e);
    sum += double(sumHalvingAsLlamaCpp(e));
  }
  for (; i < len; i++) sum += double(out[i] = std::exp(x[i] - max));
  const float inv = float(1.0 / sum);
  for (i = 0; i < len; i++) out[i] *= inv;
}

// out (d values) = the weighted sum of the value rows, each value the dot product over positions in
// llama.cpp's order: partial sum k (k < 64) adds the positions p = k mod 64 in increasing order, then the
// 64 are folded as in dotAsLlamaCpp. d is a multiple of 16 (at most 256).
inline void weightedValuesAsLlamaCpp(const float* weights, const float* const* values, size_t first, size_t count, size_t d,
                                     float* partial, float* out) {
  const size_t vecs = d / 16;
  for (size_t k = 0; k < 64; k++) {
    __m512 acc[16];
    for (size_t j = 0; j < vecs; j++) acc[j] = _mm512_setzero_ps();
    // The first position at or after `first` whose cell is k mod 64.
    for (size_t p = first + (k + 64 - first % 64) % 64; p < first + count; p += 64) {
      const __m512 w = _mm512_set1_ps(weights[p - first]);
      const float* v = values[p - first];
      for (size_t j = 0; j < vecs; j++) acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(v + 16 * j), w, acc[j]);
    }
    for (size_t j = 0; j < vecs; j++) _mm512_storeu_ps(partial + k * d + 16 * j, acc[j]);
  }
  for (size_t j = 0; j < vecs; j++) {
    // Lane l of the four vectors is partial l, 16 + l, 32 + l, 48 + l; then the 16 lanes by halves.
    __m512 lane[16];
    for (size_t l = 0; l < 16; l++) {
      const __m512 v[4] = {_mm512_loadu_ps(partial + l * d + 16 * j), _mm512_loadu_ps(partial + (16 + l) * d + 16 * j),
                           _mm512_loadu_ps(partial + (32 + l) * d + 16 * j), _mm512_loadu_ps(partial + (48 + l) * d + 16 * j)};
      lane[l] = foldFourAsLlamaCpp(v);
    }
    for (size_t half = 8; half >= 1; half /= 2) {
      for (size_t l = 0; l < half; l++) lane[l] = _mm512_add_ps(lane[l + half], lane[l]);
    }
    _mm512_storeu_ps(out + 16 * j, lane[0]);
  }
}

void attendF32InLlamaCppOrder(const LlamaCppAttention& a) {
  thread_local LlamaCppAttentionScratch scratch;
  scratch.weights.resize(a.heads * a.count);
  scratch.partial.resize(64 * a.d);
  const float invCap = a.softcap > 0.0f ? 1.0f / a.softcap : 0.0f;
  for (size_t h = 0; h < a.heads; h++) {
    const float* q = a.q + h * a.d;
    float* s = scratch.weights.data() + h * a.count;
    for (size_t i = 0; i < a.count; i++) {
      // Gemma 2's cap, as llama.cpp's graph takes it: scale by 1 / cap, tanh, scale by cap (its files
      // scale the queries, so the softmax scale is 1 there and its order against the cap is moot).
      const float score = dotAsLlamaCpp(q, a.keys[i], a.d) * a.scale;
      s[i] = a.softcap > 0.0f ? std::tanh(score * invCap) * a.softcap : score;
    }
    softmaxAsLlamaCpp(s, a.first, a.count);
    if (a.weightSums) {
      for (size_t i = 0; i < a.count; i++) a.weightSums[i] += s[i];
    }
    weightedValuesAsLlamaCpp(s, a.values, a.first, a.count, a.d, scratch.partial.data(), a.out + h * a.d);
  }
}

}  // namespace
}  // namespace vserve
