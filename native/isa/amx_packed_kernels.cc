// AMX-INT8 matmuls on packed weights (packed_weights.h), for prefill: the "avx512-amx" kernel set is the
// AVX-512 set with its packed Q8_0 / Q4_0 / IQ4_NL / Q3_K / Q4_K / Q5_K / Q6_K / IQ4_XS kernels replaced by
// these. Compiled into a static library of its own with the AMX flags; cpu_features.cc offers the set
// only where the CPU has AMX-TILE and AMX-INT8 and the kernel granted this process the tile state.
//
// The packed layout already is the B-tile layout of TDPBSSD: for a block of 32 (or 16) K values of a
// 16-row group, dword (k, r) at 64k + 4r holds K values 4k..4k+3 of weight row r, i.e. K/4 tile rows of
// 16 columns x 4 bytes. A format unpacks one step of a group column (nibbles, split bits, codebooks) into
// signed bytes in that layout; the A tile is 16 activation rows x K bytes. Every C tile (16 activation
// rows x 16 weight rows of int32) covers one weight scale block, so it is converted to f32 and scaled
// after each block, as the AVX-512 kernels do per block: by the weight and activation scales where the
// activations have a scale per 32 values (SignedRows), by the weight scales alone where they have one
// per super-block (KQuantRows), whose scale then multiplies the super-block's sum once.
//
// Per kernel call (a run of groups, matmul.cc makes them long: KernelSet::packedLongTasksFrom) the
// activation scales are laid out once (and the quants copied tile by tile, over enough groups), and per
// group the weights are unpacked once; then each group meets the row tiles two at a time, the tile unit
// and the vector units working on staggered steps.
// Activation rows past the last whole 16 (and decode, n < 16) go to the AVX-512 packed kernel: a
// partial tile would need its own tile configuration or a padded copy of the rows.
#include <immintrin.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include "amx_formats.h"

namespace vserve {
namespace {

// Rows [from, rows) of the activations, for the AVX-512 kernel.
SignedRows rowsFrom(const SignedRows& x, size_t from) {
  const size_t blocks = x.cols / kQKBlock;
  return {x.q + from * x.cols, x.d + from * blocks, x.bias + from * blocks, x.s + from * blocks, x.rows - from, x.cols};
}
KQuantRows rowsFrom(const KQuantRows& x, size_t from) {
  return {x.q + from * x.cols, x.d + from * (x.cols / kQKBlock), x.s + from * (x.cols / 16), x.rows - from, x.cols};
}

// ---- the tile driver ----

// How many consecutive steps share one activation row scale: KQuantRows carry one scale per super-block
// (repeated per 32 values), so their tiles are summed with the weight scales alone over a super-block and
// the row scale applied once at its end; SignedRows carry a scale per 32 values, i.e. per step.
template <class F>
constexpr size_t kStepsPerRowScale = std::is_same_v<typename F::Rows, KQuantRows> ? size_t(kQKSuper / F::kK) : 1;

// 16 activation rows for the tile loop: the A tile of step s at q + s * stepBytes (16 rows rowBytes
// apart), and for each step the rows' scales and offsets at fixed places for the epilogue. The quants
// are either the rows in place (stepBytes K, rowBytes cols) or copied tile by tile (stepBytes 16 K,
// rowBytes K): a tile load from the rows in place reads 16 lines `cols` apart, which at power-of-two
// widths fall into a few cache sets and evict each other, so the copy pays off over enough groups.
struct TiledRows {
  const int8_t* q;
  size_t stepBytes, rowBytes;
  const float* scale;   // [step][16]
  const float* offset;  // [step][16] (kOffset formats)
};

// Groups per kernel call from which the quants are copied tile by tile (the copy costs about as much
// as a couple of groups' tile work).
constexpr size_t kMinGroupsToCopy = 8;

// The scales and offsets (and, with `copy`, the quants) of rows [0, rows) (a multiple of 16), one row
// tile after the other. A format's step s always starts at column s * K.
template <class F>
void tileActivations(const typename F::Rows& x, size_t rows, bool copy, std::vector<int8_t>& q, std::vector<float>& scales) {
  const size_t steps = x.cols / F::kK;
  if (copy && q.size() < rows * x.cols) q.resize(rows * x.cols);
  if (scales.size() < 2 * steps * rows) scales.resize(2 * steps * rows);
  for (size_t i0 = 0; i0 < rows; i0 += kTileRows) {
    float* scale = scales.data() + 2 * steps * i0;
    float* offset = scale + steps * kTileRows;
    for (size_t s = 0, u = 0; u < steps / F::kTiles; u++) {
      for (int t = 0; t < F::kTiles; t++, s++) {
        for (size_t m = 0; m < kTileRows; m++) {
          const float rs = F::rowScale(x, i0 + m, u, t);
          scale[s * kTileRows + m] = rs;
          if constexpr (F::kOffset) {
            // Per-super-block row scales are applied after the offset (accumulateStep), so it is taken
            // in their units (an all-zero super-block has scale 0 and offsets 0).
            const float ro = F::rowOffset(x, i0 + m, u, t);
            offset[s * kTileRows + m] = kStepsPerRowScale<F> == 1 ? ro : rs == 0.0f ? 0.0f : ro / rs;
          }
        }
      }
    }
    if (copy) {
      for (size_t m = 0; m < kTileRows; m++) {
        int8_t* tiles = q.data() + i0 * x.cols + m * F::kK;
        const int8_t* row = x.q + (i0 + m) * x.cols;
        for (size_t s = 0; s < steps; s++) std::memcpy(tiles + s * kTileRows * F::kK, row + s * F::kK, F::kK);
      }
    }
  }
}


// Adds one step's C tile (int32, 16 activation rows x 16 weight rows) into f32 accumulators. With one
// row scale per step, straight into `acc`; otherwise into the run's partial sums `part` (started on the
// run's first step), which its last step scales by the row scale into `acc`. Offsets (kOffset) are then
// taken in units of the row scale, as tileActivations lays them out.
template <class F, bool kFirst, bool kLast>
inline void accumulateStep(const float* weightScale, const float* weightOffset, const float* rowScale, const float* rowOffset,
                           const int32_t (*c)[16], float (*part)[16], float (*acc)[16]) {
  const __m512 ws = _mm512_loadu_ps(weightScale);
  __m512 wo = _mm512_setzero_ps();
  if constexpr (F::kOffset) wo = _mm512_loadu_ps(weightOffset);
#pragma GCC unroll 16
  for (size_t m = 0; m < kTileRows; m++) {
    const __m512 dot = _mm512_cvtepi32_ps(_mm512_load_si512(c[m]));
    if constexpr (kStepsPerRowScale<F> == 1) {
      __m512 v = _mm512_fmadd_ps(dot, _mm512_mul_ps(ws, _mm512_set1_ps(rowScale[m])), _mm512_load_ps(acc[m]));
      if constexpr (F::kOffset) v = _mm512_fmadd_ps(wo, _mm512_set1_ps(rowOffset[m]), v);
      _mm512_store_ps(acc[m], v);
    } else {
      __m512 v = kFirst ? _mm512_mul_ps(dot, ws) : _mm512_fmadd_ps(dot, ws, _mm512_load_ps(part[m]));
      if constexpr (F::kOffset) v = _mm512_fmadd_ps(wo, _mm512_set1_ps(rowOffset[m]), v);
      if constexpr (kLast) {
        _mm512_store_ps(acc[m], _mm512_fmadd_ps(v, _mm512_set1_ps(rowScale[m]), _mm512_load_ps(acc[m])));
      } else {
        _mm512_store_ps(part[m], v);
      }
    }
  }
}

// One 16-row group x NR row tiles of activations (a0, and a1 16 rows further when NR is 2; they share
// each B tile load). A tile store waits for the multiplies before it, and a vector load of what a tile
// store wrote waits for that store to retire, so the steps are staggered: step s is multiplied into C
// tiles 0-1 or 2-3 (s even or odd), stored a step later and converted and scaled by the vector units
// two steps later, while the tile unit works on the next steps.
template <class F, int NR>
void tileRows(const TiledRows& a0, const TiledRows& a1, const UnpackedGroup& g, size_t steps, float* out, size_t outStride) {
  constexpr size_t kTileBytes = 16 * F::kK, kRun = kStepsPerRowScale<F>;
  alignas(64) int32_t c[2][2][kTileRows][16];  // [buffer][row tile]
  alignas(64) float acc[2][kTileRows][16];
  alignas(64) float part[kRun > 1 ? 2 : 1][kTileRows][16];
  std::memset(acc, 0, sizeof acc);
  auto accumulateTile = [&](const TiledRows& a, size_t s, const int32_t (*cs)[16], float (*pa)[16], float (*ac)[16]) {
    const float* ws = g.scale + 16 * s;
    const float* wo = g.offset + 16 * s;
    const float* rs = a.scale + s * kTileRows;
    const float* ro = a.offset + s * kTileRows;
    if (kRun == 1) {
      accumulateStep<F, true, true>(ws, wo, rs, ro, cs, pa, ac);
    } else if (s % kRun == 0) {
      accumulateStep<F, true, false>(ws, wo, rs, ro, cs, pa, ac);
    } else if (s % kRun == kRun - 1) {
      accumulateStep<F, false, true>(ws, wo, rs, ro, cs, pa, ac);
    } else {
      accumulateStep<F, false, false>(ws, wo, rs, ro, cs, pa, ac);
    }
  };
  for (size_t s = 0; s < steps + 2; s++) {
    if (s < steps) {
      const uint8_t* bq = g.b + s * kTileBytes;
      // (The tile numbers of the intrinsics must be literals.)
      _tile_loadd(4, a0.q + s * a0.stepBytes, a0.rowBytes);
      if constexpr (NR > 1) _tile_loadd(5, a1.q + s * a1.stepBytes, a1.rowBytes);
      if (s % 2 == 0) {
        _tile_loadd(6, bq, 64);
        _tile_zero(0);
        _tile_dpbssd(0, 4, 6);
        if constexpr (NR > 1) {
          _tile_zero(1);
          _tile_dpbssd(1, 5, 6);
        }
      } else {
        _tile_loadd(7, bq, 64);
        _tile_zero(2);
        _tile_dpbssd(2, 4, 7);
        if constexpr (NR > 1) {
          _tile_zero(3);
          _tile_dpbssd(3, 5, 7);
        }
      }
    }
    if (s >= 1 && s - 1 < steps) {
      if ((s - 1) % 2 == 0) {
        _tile_stored(0, c[0][0], 64);
        if constexpr (NR > 1) _tile_stored(1, c[0][1], 64);
      } else {
        _tile_stored(2, c[1][0], 64);
        if constexpr (NR > 1) _tile_stored(3, c[1][1], 64);
      }
    }
    if (s >= 2 && s - 2 < steps) {
      accumulateTile(a0, s - 2, c[s % 2][0], part[0], acc[0]);
      if constexpr (NR > 1) accumulateTile(a1, s - 2, c[s % 2][1], part[kRun > 1 ? 1 : 0], acc[1]);
    }
  }
  for (size_t m = 0; m < kTileRows; m++) _mm512_storeu_ps(out + m * outStride, _mm512_load_ps(acc[0][m]));
  if constexpr (NR > 1) {
    for (size_t m = 0; m < kTileRows; m++) _mm512_storeu_ps(out + (kTileRows + m) * outStride, _mm512_load_ps(acc[1][m]));
  }
}

template <class F>
void matmulAmx(const typename F::Rows& x, const uint8_t* w, const MatmulRange& range) {
  const size_t tiledRows = x.rows / kTileRows * kTileRows;
  if (tiledRows > 0) {
    thread_local std::vector<int8_t> q;
    thread_local std::vector<float> scales;
    // A thread usually runs several tasks of one matmul: the rows are laid out once for all of them.
    struct Layout {
      uint64_t generation;
      size_t rows, cols;
      bool copy;
    };
    thread_local Layout laidOut{0, 0, 0, false};
    const bool copy = (range.rowEnd - range.rowBegin) / kPackRows >= kMinGroupsToCopy;
    const Layout wanted{x.generation, tiledRows, x.cols, copy};
    if (wanted.generation == 0 || wanted.generation != laidOut.generation || wanted.rows != laidOut.rows || wanted.cols != laidOut.cols || wanted.copy != laidOut.copy) {
      tileActivations<F>(x, tiledRows, copy, q, scales);
      laidOut = wanted;
    }
    configureTiles<F::kK>();
    const size_t groupBytes = F::groupBytes(x.cols), steps = F::units(x.cols) * F::kTiles;
    thread_local std::vector<uint8_t> b;
    thread_local std::vector<float> weightScales;
    // Groups outside: each group is unpacked once for all activation rows.
    for (size_t r = range.rowBegin; r < range.rowEnd; r += kPackRows) {
      const UnpackedGroup g = unpackGroup<F>(w + r / kPackRows * groupBytes, steps, b, weightScales);
      auto tiles = [&](size_t i0) {
        const float* scale = scales.data() + 2 * steps * i0;
        if (!copy) return TiledRows{x.q + i0 * x.cols, F::kK, x.cols, scale, scale + steps * kTileRows};
        return TiledRows{q.data() + i0 * x.cols, kTileRows * F::kK, F::kK, scale, scale + steps * kTileRows};
      };
      size_t i0 = 0;
      for (; i0 + 2 * kTileRows <= tiledRows; i0 += 2 * kTileRows) {
        tileRows<F, 2>(tiles(i0), tiles(i0 + kTileRows), g, steps, range.out + i0 * range.outStride + r, range.outStride);
      }
      if (i0 < tiledRows) tileRows<F, 1>(tiles(i0), tiles(i0), g, steps, range.out + i0 * range.outStride + r, range.outStride);
    }
    _tile_release();
  }
  if (tiledRows < x.rows) {
    F::fallback(rowsFrom(x, tiledRows), w, MatmulRange{range.rowBegin, range.rowEnd, range.out + tiledRows * range.outStride, range.outStride});
  }
}

void matmulQ8_0PackedAmx(const SignedRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Q8_0Amx>(x, w, range); }
void matmulQ4_0PackedAmx(const SignedRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Nibble32Amx<false>>(x, w, range); }
void matmulIQ4_NLPackedAmx(const SignedRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Nibble32Amx<true>>(x, w, range); }
void matmulQ4_KPackedAmx(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Q4_KLayoutAmx<false>>(x, w, range); }
void matmulQ5_KPackedAmx(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Q4_KLayoutAmx<true>>(x, w, range); }
void matmulQ6_KPackedAmx(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Q6_KAmx>(x, w, range); }
void matmulQ3_KPackedAmx(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<Q3_KAmx>(x, w, range); }
void matmulIQ4_XSPackedAmx(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulAmx<IQ4_XSAmx>(x, w, range); }

}  // namespace

const KernelSet& avx512AmxKernels() {
  static const SuperBlockKernels kSuperBlocks = [] {
    SuperBlockKernels s = *avx512SuperBlockKernels();
    s.matmulQ5_KPacked = matmulQ5_KPackedAmx;
    s.matmulIQ4_XSPacked = matmulIQ4_XSPackedAmx;
    s.matmulQ3_KPacked = matmulQ3_KPackedAmx;
    return s;
  }();
  static const Block32Kernels kBlock32 = [] {
    Block32Kernels b = *avx512Block32Kernels();
    b.matmulIQ4_NLPacked = matmulIQ4_NLPackedAmx;
    return b;
  }();
  static const KernelSet kSet = [] {
    KernelSet k = avx512Kernels();
    k.isa = "avx512-amx";
    k.matmulQ8_0Packed = matmulQ8_0PackedAmx;
    k.matmulQ4_0Packed = matmulQ4_0PackedAmx;
    k.matmulQ4_KPacked = matmulQ4_KPackedAmx;
    k.matmulQ6_KPacked = matmulQ6_KPackedAmx;
    k.superBlocks = &kSuperBlocks;
    k.block32 = &kBlock32;
    k.packedLongTasksFrom = kTileRows;
    return k;
  }();
  return kSet;
}

}  // namespace vserve
