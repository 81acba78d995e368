// AVX2 + FMA + F16C kernels. Compiled only into the avx2 static library with those flags; selected at
// run time on x86-64 CPUs without AVX-512 (or forced with VSERVE_ISA=avx2).
//
// Int8 matmul: without VNNI the u8 x s8 multiply is vpmaddubsw, whose 16-bit pair sums would saturate
// on (q + 128) * w, so the kernel uses the sign trick instead: |w| * (q with w's sign) <= 128 * 127.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../fast_exp.h"
#include "../gelu.h"
#include "../ggml_types.h"
#include "../kernel_set.h"
#include "add_rows.h"
#include "avx2_attention_tiles.h"
#include "avx2_kquant_rows.h"
#include "avx2_packed_kernels.h"
#include "kquant_blocks.h"
#include "tile_grid.h"
#include "weight_prefetch.h"

namespace vserve {
namespace {

inline float hmax(__m256 v) {
  const __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(t, _mm_movehdup_ps(t)));
}

// Horizontal sum of eight int32 lanes.
inline int hsumInts(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1))));
}

void quantizeRows(const float* x, size_t rows, size_t cols, uint8_t* q, float* d, float* s) {
  const size_t blocks = rows * (cols / kQKBlock);
  const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i offset = _mm256_set1_epi8(char(0x80));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (size_t b = 0; b < blocks; b++, x += kQKBlock, q += kQKBlock) {
    __m256 v[4];
    __m256 amaxv = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      amaxv = _mm256_max_ps(amaxv, _mm256_and_ps(v[k], absMask));
    }
    const float amax = hmax(amaxv);
    const float scale = amax / 127.0f;
    d[b] = _cvtsh_ss(_cvtss_sh(scale, _MM_FROUND_TO_NEAREST_INT));
    const __m256 inv = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    __m256i i32[4];
    for (int k = 0; k < 4; k++) i32[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], inv));
    const int sum = hsumInts(_mm256_add_epi32(_mm256_add_epi32(i32[0], i32[1]), _mm256_add_epi32(i32[2], i32[3])));
    s[b] = _cvtsh_ss(_cvtss_sh(scale * float(sum), _MM_FROUND_TO_NEAREST_INT));
    // packs work within 128-bit lanes; the final permute restores element order.
    const __m256i i16a = _mm256_packs_epi32(i32[0], i32[1]);
    const __m256i i16b = _mm256_packs_epi32(i32[2], i32[3]);
    const __m256i i8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i16a, i16b), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_xor_si256(i8, offset));
  }
}

void quantizeSuperRows(const float* x, size_t rows, size_t cols, int8_t* q, float* d, float* s) {
  constexpr int kVecs = kQKSuper / 8;
  const size_t supers = rows * (cols / kQKSuper);
  const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (size_t b = 0; b < supers; b++, x += kQKSuper, q += kQKSuper, d += kQKSuper / kQKBlock, s += kQKSuper / 16) {
    __m256 amaxv = _mm256_setzero_ps();
    for (int k = 0; k < kVecs; k++) amaxv = _mm256_max_ps(amaxv, _mm256_and_ps(_mm256_loadu_ps(x + 8 * k), absMask));
    const float amax = hmax(amaxv);
    float iscale = 0.0f, scale = 0.0f;
    if (amax > 0.0f) {
      // The sign comes from the first value of largest magnitude.
      const __m256 target = _mm256_set1_ps(amax);
      int at = 0;
      for (int k = 0; k < kVecs; k++) {
        const int hits = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + 8 * k), absMask), target, _CMP_EQ_OQ));
        if (hits != 0) {
          at = 8 * k + __builtin_ctz(unsigned(hits));
          break;
        }
      }
      iscale = -127.0f / x[at];
      scale = 1.0f / iscale;
    }
    const __m256 mul = _mm256_set1_ps(iscale);
    for (int k = 0; k < kVecs; k += 4) {
      __m256i i32[4];
      for (int j = 0; j < 4; j++) i32[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * (k + j)), mul));
      s[k / 2] = scale * float(hsumInts(_mm256_add_epi32(i32[0], i32[1])));
      s[k / 2 + 1] = scale * float(hsumInts(_mm256_add_epi32(i32[2], i32[3])));
      const __m256i i16a = _mm256_packs_epi32(i32[0], i32[1]);
      const __m256i i16b = _mm256_packs_epi32(i32[2], i32[3]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 8 * k), _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i16a, i16b), order));
    }
    for (int k = 0; k < kQKSuper / kQKBlock; k++) d[k] = scale;
  }
}

struct Q8_0Block {
  static constexpr int kBytes = kQ8_0Bytes;
  static __m256i load(const uint8_t* blk) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)); }
};

struct Q4_0Block {
  static constexpr int kBytes = kQ4_0Bytes;
  static __m256i load(const uint8_t* blk) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m128i mask = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(packed, mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
  }
};

template <class F>
struct QuantKernel : TileOperands<QuantizedRows, uint8_t> {
  template <int RW, int RX>
  void tile(size_t i0, size_t r0) const {
    const size_t blocks = x.cols / kQKBlock;
    const size_t rowBytes = blocks * F::kBytes;
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i offset = _mm256_set1_epi8(char(0x80));
    __m256 acc[RW][RX];
    for (int j = 0; j < RW; j++)
      for (int i = 0; i < RX; i++) acc[j][i] = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
      __m256i wv[RW], wabs[RW];
      float ws[RW];
      for (int j = 0; j < RW; j++) {
        const uint8_t* blk = w + (r0 + j) * rowBytes + b * F::kBytes;
        prefetchWeights(blk + kWeightPrefetchBytes);
        wv[j] = F::load(blk);
        wabs[j] = _mm256_abs_epi8(wv[j]);
        ws[j] = _cvtsh_ss(loadU16(blk));
      }
      for (int i = 0; i < RX; i++) {
        const size_t row = i0 + i;
        const __m256i xq = _mm256_xor_si256(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + row * x.cols + b * kQKBlock)), offset);
        const float xd = x.d[row * blocks + b];
        for (int j = 0; j < RW; j++) {
          const __m256i pairs = _mm256_maddubs_epi16(wabs[j], _mm256_sign_epi8(xq, wv[j]));
          const __m256 dots = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
          acc[j][i] = _mm256_fmadd_ps(dots, _mm256_set1_ps(ws[j] * xd), acc[j][i]);
        }
      }
    }
    for (int i = 0; i < RX; i++)
      for (int j = 0; j < RW; j++) range.out[(i0 + i) * range.outStride + r0 + j] = hsum(acc[j][i]);
  }
};

template <class F>
void matmulQuant(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<2, 3>(QuantKernel<F>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}

void matmulQ8_0(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulQuant<Q8_0Block>(x, w, range);
}
void matmulQ4_0(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulQuant<Q4_0Block>(x, w, range);
}

// ---- K-quants: KQuantRows against Q4_K / Q6_K super-blocks (avx2_kquant_rows.h) ----

struct Q4_K {
  static constexpr int kBytes = kQ4_KBytes;
  static void decode(const uint8_t* blk, KQuantWeights& w) {
    w.d = _mm256_set1_ps(_cvtsh_ss(loadU16(blk)));
    const __m256 negDmin = _mm256_set1_ps(-_cvtsh_ss(loadU16(blk + 2)));
    uint64_t scales, mins;
    unpackQ4_KScales(blk + kQ4_KScalesAt, &scales, &mins);
    // Sub-block j = values 32j..32j+31: one scale for the whole vector.
    const __m256i scaleWords = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(scales))));
    for (int j = 0; j < 8; j++) w.scale[j] = spreadWords(scaleWords, j, j);
    const __m128i m = _mm_cvtsi64_si128(int64_t(mins));
    const __m128i pairs = _mm_unpacklo_epi8(m, m);  // min j for activation sums 2j and 2j + 1
    w.offsets[0] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(pairs)), negDmin);
    w.offsets[1] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(pairs, 8))), negDmin);
    const __m256i low = _mm256_set1_epi8(0x0f);
    for (int p = 0; p < 4; p++) {
      const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kQ4_KQuantsAt + 32 * p));
      w.q[2 * p] = _mm256_and_si256(bytes, low);
      w.q[2 * p + 1] = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low);
    }
  }
};

struct Q6_K {
  static constexpr int kBytes = kQ6_KBytes;
  static void decode(const uint8_t* blk, KQuantWeights& w) {
    // Of each 128 values, 0-31 take qh bits 0-1, 32-63 bits 2-3 (low 4 bits: ql's low nibbles),
    // 64-95 bits 4-5 and 96-127 bits 6-7 (ql's high nibbles); each shift puts them at bits 4-5.
    const __m256i low = _mm256_set1_epi8(0x0f), high = _mm256_set1_epi8(0x30);
    for (int half = 0; half < 2; half++) {
      const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * half));
      const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * half + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kQ6_KHighAt + 32 * half));
      __m256i* q = w.q + 4 * half;
      q[0] = _mm256_or_si256(_mm256_and_si256(ql0, low), _mm256_and_si256(_mm256_slli_epi16(qh, 4), high));
      q[1] = _mm256_or_si256(_mm256_and_si256(ql1, low), _mm256_and_si256(_mm256_slli_epi16(qh, 2), high));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low), _mm256_and_si256(qh, high));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low),
                             _mm256_and_si256(_mm256_srli_epi16(qh, 2), high));
    }
    // Vector v holds sub-blocks 2v (low 128-bit lane) and 2v + 1 (high lane).
    const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kQ6_KScalesAt));
    const __m256i words = _mm256_cvtepi8_epi16(sc);
    const __m256i first = _mm256_permute2x128_si256(words, words, 0x00);   // scales 0-7 in both lanes
    const __m256i second = _mm256_permute2x128_si256(words, words, 0x11);  // scales 8-15
    for (int v = 0; v < 4; v++) {
      w.scale[v] = spreadWords(first, 2 * v, 2 * v + 1);
      w.scale[v + 4] = spreadWords(second, 2 * v, 2 * v + 1);
    }
    const float d = _cvtsh_ss(loadU16(blk + kQ6_KDAt));
    w.d = _mm256_set1_ps(d);
    const __m256 offset = _mm256_set1_ps(-32.0f * d);
    w.offsets[0] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)), offset);
    w.offsets[1] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8))), offset);
  }
};

// One weight row at a time: a decoded super-block alone fills the 16 registers.
void matmulQ4_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<1, 4>(KQuantKernel<Q4_K>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}
void matmulQ6_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  tileGrid<1, 4>(KQuantKernel<Q6_K>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}

// ---- float weights: 8 columns at a time; the < 8 column tail is scalar ----

struct F32Loader {
  using T = float;
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static float one(const float* p) { return *p; }
};
struct F16Loader {
  using T = uint16_t;
  static __m256 load(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static float one(const uint16_t* p) { return _cvtsh_ss(*p); }
};
struct BF16Loader {
  using T = uint16_t;
  static __m256 load(const uint16_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static float one(const uint16_t* p) { return bf16ToFloat(*p); }
};

template <class L>
struct FloatKernel : TileOperands<FloatRows, typename L::T> {
  using Operands = TileOperands<FloatRows, typename L::T>;  // a dependent base: name its members
  using Operands::range;
  using Operands::w;
  using Operands::x;

  template <int RW, int RX>
  void tile(size_t i0, size_t r0) const {
    __m256 acc[RW][RX];
    for (int j = 0; j < RW; j++)
      for (int i = 0; i < RX; i++) acc[j][i] = _mm256_setzero_ps();
    const size_t body = x.cols & ~size_t(7);
    for (size_t c = 0; c < body; c += 8) {
      __m256 wv[RW];
      for (int j = 0; j < RW; j++) wv[j] = L::load(w + (r0 + j) * x.cols + c);
      for (int i = 0; i < RX; i++) {
        const __m256 xv = _mm256_loadu_ps(x.x + (i0 + i) * x.cols + c);
        for (int j = 0; j < RW; j++) acc[j][i] = _mm256_fmadd_ps(wv[j], xv, acc[j][i]);
      }
    }
    for (int i = 0; i < RX; i++) {
      const float* xr = x.x + (i0 + i) * x.cols;
      for (int j = 0; j < RW; j++) {
        float sum = hsum(acc[j][i]);
        for (size_t c = body; c < x.cols; c++) sum += L::one(w + (r0 + j) * x.cols + c) * xr[c];
        range.out[(i0 + i) * range.outStride + r0 + j] = sum;
      }
    }
  }
};

template <class L>
void matmulFloat(const FloatRows& x, const typename L::T* w, const MatmulRange& range) {
  tileGrid<4, 3>(FloatKernel<L>{{x, w, range}}, x.rows, range.rowBegin, range.rowEnd);
}

void matmulF32(const FloatRows& x, const float* w, const MatmulRange& range) { matmulFloat<F32Loader>(x, w, range); }
void matmulF16(const FloatRows& x, const uint16_t* w, const MatmulRange& range) { matmulFloat<F16Loader>(x, w, range); }
void matmulBF16(const FloatRows& x, const uint16_t* w, const MatmulRange& range) { matmulFloat<BF16Loader>(x, w, range); }

float dot(const float* a, const float* b, size_t n) { return rowDot<F32Rows>(a, b, n); }

void axpy(float* y, const float* x, float a, size_t n) { rowAxpy<F32Rows>(y, x, a, n); }

void scale(float* y, float a, size_t n) {
  const __m256 av = _mm256_set1_ps(a);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(av, _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] *= a;
}

uint64_t readAll(const uint8_t* p, size_t bytes) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 128 <= bytes; i += 128) {
    a0 = _mm256_xor_si256(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_xor_si256(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_xor_si256(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_xor_si256(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i all = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  uint64_t acc = uint64_t(_mm256_extract_epi64(all, 0) ^ _mm256_extract_epi64(all, 1) ^ _mm256_extract_epi64(all, 2) ^
                          _mm256_extract_epi64(all, 3));
  for (; i < bytes; i++) acc ^= p[i];
  return acc;
}

// Attention tiles: the loops of avx2_attention_tiles.h on f32 rows.
void scoreTile(const float* q, size_t heads, const float* const* keys, size_t count, size_t d, float scale, float* scores,
               size_t stride, const NextRows& next) {
  scoreRows<F32Rows>(q, heads, keys, count, d, scale, scores, stride, next.rows, next.count);
}

void accumulateTile(float* out, size_t heads, const float* const* values, const float* weights, size_t stride, size_t count, size_t d,
                    const NextRows& next) {
  accumulateRows<F32Rows>(out, heads, values, weights, stride, count, d, next.rows, next.count);
}

// expApprox (fast_exp.h) on 8 lanes: the same range reduction and polynomial; 2^n built in the
// exponent bits.
inline __m256 expApprox8(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(kExpClamp), _mm256_max_ps(_mm256_set1_ps(-kExpClamp), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2High), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Low), r);
  __m256 p = _mm256_set1_ps(kExpTaylor[0]);
  for (int i = 1; i < 7; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpTaylor[i]));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

inline float horizontalMax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

// Vector max and sum over whole 8-position steps, the rest one at a time: the scalar form's loops
// were dependent chains, one element per step.
void softmaxTile(float* scores, size_t heads, size_t stride, size_t count, float* max, float* sum, float* correction) {
  const size_t whole = count & ~size_t(7);
  for (size_t h = 0; h < heads; h++) {
    float* s = scores + h * stride;
    __m256 m = _mm256_set1_ps(-INFINITY);
    for (size_t p = 0; p < whole; p += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(s + p));
    float blockMax = horizontalMax(m);
    for (size_t p = whole; p < count; p++) blockMax = std::max(blockMax, s[p]);
    const float newMax = std::max(max[h], blockMax);
    correction[h] = newMax > max[h] && sum[h] > 0.0f ? std::exp(max[h] - newMax) : 1.0f;
    const __m256 shift = _mm256_set1_ps(newMax);
    __m256 total = _mm256_setzero_ps();
    for (size_t p = 0; p < whole; p += 8) {
      const __m256 e = expApprox8(_mm256_sub_ps(_mm256_loadu_ps(s + p), shift));
      _mm256_storeu_ps(s + p, e);
      total = _mm256_add_ps(total, e);
    }
    float tileSum = hsum(total);
    for (size_t p = whole; p < count; p++) tileSum += s[p] = expApprox(s[p] - newMax);
    sum[h] = sum[h] * correction[h] + tileSum;
    max[h] = newMax;
  }
}

// GeGLU: F16C rounds eight inputs to f16 (to nearest, as floatToHalf does), their bits index the table.
void geglu(const float* table, float* out, const float* gate, const float* up, size_t len) {
  const __m256 low = _mm256_set1_ps(-10.0f), high = _mm256_set1_ps(10.0f);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256i index = _mm256_cvtepu16_epi32(_mm256_cvtps_ph(g, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256 gelu = _mm256_i32gather_ps(table, index, 4);
    gelu = _mm256_blendv_ps(gelu, g, _mm256_cmp_ps(g, high, _CMP_GE_OQ));
    const __m256 product = _mm256_mul_ps(gelu, _mm256_loadu_ps(up + i));
    _mm256_storeu_ps(out + i, _mm256_blendv_ps(product, _mm256_setzero_ps(), _mm256_cmp_ps(g, low, _CMP_LE_OQ)));
  }
  gegluScalar(table, out + i, gate + i, up + i, len - i);
}

float expWeights(const float* x, size_t count, float shift, float scale, float floor, float* out) {
  const size_t whole = count & ~size_t(7);
  const __m256 vShift = _mm256_set1_ps(shift), vScale = _mm256_set1_ps(scale), vFloor = _mm256_set1_ps(floor);
  const __m256 minusInf = _mm256_set1_ps(-INFINITY);
  __m256 total = _mm256_setzero_ps();
  for (size_t i = 0; i < whole; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 keep = _mm256_and_ps(_mm256_cmp_ps(v, vFloor, _CMP_GE_OQ), _mm256_cmp_ps(v, minusInf, _CMP_GT_OQ));
    const __m256 w = _mm256_and_ps(keep, expApprox8(_mm256_mul_ps(_mm256_sub_ps(v, vShift), vScale)));
    _mm256_storeu_ps(out + i, w);
    total = _mm256_add_ps(total, w);
  }
  float sum = hsum(total);
  for (size_t i = whole; i < count; i++) {
    out[i] = x[i] >= floor && x[i] > -INFINITY ? expApprox((x[i] - shift) * scale) : 0.0f;
    sum += out[i];
  }
  return sum;
}

void addRows(float* y, const float* x, size_t stride, const float* a, size_t rows, size_t n) {
  addRowsGeneric(y, x, stride, a, rows, n);
}

void swiglu(float* out, const float* gate, const float* up, size_t len) { swigluScalar(out, gate, up, len); }

}  // namespace

void avx2MatmulIQ4_NLPacked(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulBlock32Packed<Block32Kind::kIQ4_NL>(x, w, range);
}
void avx2MatmulQ5_0Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulBlock32Packed<Block32Kind::kQ5_0>(x, w, range);
}
void avx2MatmulQ4_1Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulBlock32Packed<Block32Kind::kQ4_1>(x, w, range);
}
void avx2MatmulQ5_1Packed(const SignedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulBlock32Packed<Block32Kind::kQ5_1>(x, w, range);
}
void avx2MatmulQ5_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulQ5_KPacked(x, w, range); }
void avx2MatmulIQ4_XSPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulIQ4_XSPacked(x, w, range); }
void avx2MatmulQ3_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulQ3_KPacked(x, w, range); }
void avx2MatmulQ2_KPacked(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulQ2_KPacked(x, w, range); }

VSERVE_DEFINE_KERNEL_SET(avx2Kernels, "avx2", matmulQ4_K, matmulQ6_K, matmulBlock32Packed<Block32Kind::kQ8_0>,
                         matmulBlock32Packed<Block32Kind::kQ4_0>,
                         matmulQ4_KPacked, matmulQ6_KPacked, scoreTile, accumulateTile, avx2KVTiles(), avx2SuperBlockKernels(), avx2Block32Kernels())

}  // namespace vserve
