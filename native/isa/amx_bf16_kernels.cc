// AMX-BF16 matmuls on packed weights, for prefill: the "avx512-amx-bf16" kernel set is the avx512-amx set
// plus these (BF16Kernels, kernel_set.h), which matmul.cc takes from BF16Kernels::from activation rows on.
//
// Why: the int8 tile kernels (amx_packed_kernels.cc) must convert and scale every 16 x 16 int32 C tile
// after each 32-value block, because the weights and the int8 activations both carry a scale per block,
// and on this family of CPUs that vector epilogue does not overlap the tile unit and costs more than the
// multiply itself. Here each 16-row weight group is dequantized once per call into bf16 B tiles (every
// value its f32 dequantized weight rounded to bf16) and the activations are rounded to bf16 once per
// matmul, so the C tiles accumulate in f32 over the whole row and are stored once. Rounding to bf16 (8
// significant bits, relative error <= 2^-9 per value) is finer than the int8 activations' (an absolute
// error up to 1/254 of each 32 values' largest magnitude), so these results are at least as close to the
// exact product as the int8 path's, though not the same numbers.
//
// Blocking: two weight groups and two activation row tiles at a time (C tiles 0-3, A tiles 4-5, B tiles
// 6-7), so each tile load feeds two multiplies. The two groups' B tiles stay in the L1/L2 caches while all
// activation row tiles pass; the tiles of the steps ahead are prefetched, which the tile loads do not do
// well on their own.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "amx_formats.h"

namespace vserve {
namespace {

// bf16 values per tile row (64 bytes), i.e. K values per step, and per tile.
constexpr size_t kStepValues = 32;
constexpr size_t kTileValues = kTileRows * kStepValues;

inline __m512i roundedPair(__m512 low, __m512 high) { return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(high, low)); }

// Rows [tileBegin * 16, tileEnd * 16) of x (rows past `rows` as zeros) as bf16 A tiles: the tile of row
// tile i and step s is 16 rows x 32 values at tiles + (i * steps + s) * 512.
void layoutRows(const float* x, size_t rows, size_t cols, size_t tileBegin, size_t tileEnd, uint16_t* tiles) {
  const size_t steps = cols / kStepValues;
  for (size_t i = tileBegin; i < tileEnd; i++) {
    for (size_t m = 0; m < kTileRows; m++) {
      const size_t row = i * kTileRows + m;
      uint16_t* dst = tiles + i * steps * kTileValues + m * kStepValues;
      const float* src = x + row * cols;
      for (size_t s = 0; s < steps; s++, src += kStepValues) {
        const __m512i v = row < rows ? roundedPair(_mm512_loadu_ps(src), _mm512_loadu_ps(src + 16)) : _mm512_setzero_si512();
        _mm512_storeu_si512(dst + s * kTileValues, v);
      }
    }
  }
}

// ---- a group's weights as bf16 B tiles of 32 values ----
// Tile row j holds, for each weight row r (dword r), its values 2j and 2j + 1, each q * scale + offset
// rounded to bf16. An int8 tile row k (unpackGroup's layout) holds values 4k..4k+3 of each row, so it
// becomes bf16 rows 2k (values 4k, 4k+1) and 2k + 1.

// The 16 rows' scales and offsets spread over the four quarters of an int8 tile row: lane l of quarter p
// is weight row 4p + l / 4.
struct QuarterScales {
  __m512 scale[4], offset[4];
  QuarterScales(__m512 ws, __m512 wo) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int p = 0; p < 4; p++) {
      const __m512i rowOfLane = _mm512_add_epi32(_mm512_set1_epi32(4 * p), _mm512_srli_epi32(lane, 2));
      scale[p] = _mm512_permutexvar_ps(rowOfLane, ws);
      offset[p] = _mm512_permutexvar_ps(rowOfLane, wo);
    }
  }
};

// One int8 tile row (64 signed bytes) into its two bf16 tile rows at dst.
inline void convertTileRow(const uint8_t* q, const QuarterScales& s, uint16_t* dst) {
  const __m512i evenPairs = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i oddPairs = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  __m512 f[4];
  for (int p = 0; p < 4; p++) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * p));
    const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes));
    f[p] = _mm512_fmadd_ps(v, s.scale[p], s.offset[p]);
  }
  const __m512i rows0to7 = roundedPair(f[0], f[1]), rows8to15 = roundedPair(f[2], f[3]);
  _mm512_storeu_si512(dst, _mm512_permutex2var_epi32(rows0to7, evenPairs, rows8to15));
  _mm512_storeu_si512(dst + kStepValues, _mm512_permutex2var_epi32(rows0to7, oddPairs, rows8to15));
}

// The next group pair's way to bf16 tiles, done a little after each of the current pair's tile steps
// (step()), so the vector units work while the tile unit multiplies instead of each waiting for the other:
// - its int8 tiles (unpackGroup's) converted to bf16, one int8 tile row at a time;
// - the packed weights of the pair after it fetched into L2, so that unpacking those does not wait on memory.
// finish() does what is left.
template <class F>
class NextPair {
 public:
  static constexpr size_t kRowsPerUnit = F::kK / 4;

  NextPair() = default;
  // `groups` (count of them, 1 or 2, unpacked) into bf16 tiles at dst[j]; `after`: the packed bytes of the
  // pair after these (afterBytes, 0 for none) to prefetch; `tileSteps`: the step() calls to spread it over.
  NextPair(const UnpackedGroup* groups, uint16_t* const* dst, size_t count, size_t units8, const uint8_t* after, size_t afterBytes,
           size_t tileSteps)
      : rowsPerGroup_(units8 * kRowsPerUnit), rows_(count * rowsPerGroup_), ahead_(reinterpret_cast<const char*>(after)),
        aheadLines_((afterBytes + 63) / 64) {
    for (size_t j = 0; j < count; j++) group_[j] = groups[j], dst_[j] = dst[j];
    rowsPerStep_ = (rows_ + tileSteps - 1) / tileSteps;
    linesPerStep_ = (aheadLines_ + tileSteps - 1) / tileSteps;
  }

  void step() {
    for (size_t i = 0; i < rowsPerStep_ && done_ < rows_; i++) convertRow();
    for (size_t i = 0; i < linesPerStep_ && aheadLines_ > 0; i++, aheadLines_--, ahead_ += 64) _mm_prefetch(ahead_, _MM_HINT_T1);
  }

  void finish() {
    while (done_ < rows_) convertRow();
  }

 private:
  // Int8 tile row k of unit u of group j: values 4k..4k+3 of the unit's K for each of the 16 weight rows.
  void convertRow() {
    constexpr size_t kUnitsPerStep = kStepValues / F::kK;
    const size_t j = done_ / rowsPerGroup_, row = done_ - j * rowsPerGroup_, u = row / kRowsPerUnit, k = row % kRowsPerUnit;
    const UnpackedGroup& g = group_[j];
    if (k == 0) scales_ = QuarterScales(_mm512_loadu_ps(g.scale + 16 * u), F::kOffset ? _mm512_loadu_ps(g.offset + 16 * u) : _mm512_setzero_ps());
    uint16_t* unitTiles = dst_[j] + (u / kUnitsPerStep) * kTileValues + (u % kUnitsPerStep) * kRowsPerUnit * 2 * kStepValues;
    convertTileRow(g.b + u * 16 * F::kK + 64 * k, scales_, unitTiles + 2 * k * kStepValues);
    done_++;
  }

  UnpackedGroup group_[2] = {};
  uint16_t* dst_[2] = {};
  size_t rowsPerGroup_ = 1, rows_ = 0, done_ = 0, rowsPerStep_ = 0;
  QuarterScales scales_{_mm512_setzero_ps(), _mm512_setzero_ps()};
  const char* ahead_ = nullptr;
  size_t aheadLines_ = 0, linesPerStep_ = 0;
};

// How many steps ahead tileBlock prefetches the activation tiles (streamed from L2 for every group pair)
// and the weight tiles (just dequantized, but a pair of long groups outgrows L1).
constexpr size_t kPrefetchA = 2, kPrefetchB = 1;

inline void prefetchTile(const uint16_t* t) {
  const char* p = reinterpret_cast<const char*>(t);
  for (int l = 0; l < 16; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
}

// Stores a C tile (16 x 16 f32, by `store(address, row bytes)`) to its 16 x 16 block of out, of which only
// `rows` rows exist (the last row tile of a batch that is not a multiple of 16).
template <class Store>
inline void storeTile(float* out, size_t stride, size_t rows, Store&& store) {
  if (rows >= kTileRows) return store(out, stride * sizeof(float));
  alignas(64) float c[kTileRows][16];
  store(&c[0][0], sizeof c[0]);
  for (size_t m = 0; m < rows; m++) std::memcpy(out + m * stride, c[m], sizeof c[m]);
}

// NT activation row tiles (a0, a1) x NG weight groups (b0, b1) over all steps; C tile 2t + g is row tile
// t against group g. `rows`: the activation rows that exist from a0's first on.
template <int NT, int NG, class Work>
void tileBlock(const uint16_t* a0, const uint16_t* a1, const uint16_t* b0, const uint16_t* b1, size_t steps, float* out,
               size_t stride, size_t rows, Work& work) {
  _tile_zero(0);
  if constexpr (NG > 1) _tile_zero(1);
  if constexpr (NT > 1) _tile_zero(2);
  if constexpr (NT > 1 && NG > 1) _tile_zero(3);
  for (size_t s = 0; s < steps; s++) {
    if (s + kPrefetchA < steps) {
      prefetchTile(a0 + (s + kPrefetchA) * kTileValues);
      if constexpr (NT > 1) prefetchTile(a1 + (s + kPrefetchA) * kTileValues);
    }
    if (s + kPrefetchB < steps) {
      prefetchTile(b0 + (s + kPrefetchB) * kTileValues);
      if constexpr (NG > 1) prefetchTile(b1 + (s + kPrefetchB) * kTileValues);
    }
    // (The tile numbers of the intrinsics must be literals.)
    _tile_loadd(4, a0 + s * kTileValues, 64);
    if constexpr (NT > 1) _tile_loadd(5, a1 + s * kTileValues, 64);
    _tile_loadd(6, b0 + s * kTileValues, 64);
    if constexpr (NG > 1) _tile_loadd(7, b1 + s * kTileValues, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (NG > 1) _tile_dpbf16ps(1, 4, 7);
    if constexpr (NT > 1) _tile_dpbf16ps(2, 5, 6);
    if constexpr (NT > 1 && NG > 1) _tile_dpbf16ps(3, 5, 7);
    work.step();
  }
  storeTile(out, stride, rows, [](float* p, size_t bytes) { _tile_stored(0, p, bytes); });
  if constexpr (NG > 1) storeTile(out + 16, stride, rows, [](float* p, size_t bytes) { _tile_stored(1, p, bytes); });
  if constexpr (NT > 1) storeTile(out + kTileRows * stride, stride, rows - kTileRows, [](float* p, size_t bytes) { _tile_stored(2, p, bytes); });
  if constexpr (NT > 1 && NG > 1) {
    storeTile(out + kTileRows * stride + 16, stride, rows - kTileRows, [](float* p, size_t bytes) { _tile_stored(3, p, bytes); });
  }
}

template <int NG, class Work>
void rowTiles(const BF16Tiles& x, const uint16_t* b0, const uint16_t* b1, size_t steps, float* out, size_t stride, Work& work) {
  const size_t tiles = (x.rows + kTileRows - 1) / kTileRows;
  for (size_t i = 0; i < tiles; i += 2) {
    const uint16_t* a0 = x.tiles + i * steps * kTileValues;
    float* o = out + i * kTileRows * stride;
    const size_t rows = x.rows - i * kTileRows;
    if (i + 1 < tiles) {
      tileBlock<2, NG>(a0, a0 + steps * kTileValues, b0, b1, steps, o, stride, rows, work);
    } else {
      tileBlock<1, NG>(a0, a0, b0, b1, steps, o, stride, rows, work);
    }
  }
}

// Group pairs in turn: while one pair's bf16 tiles meet every activation row tile, the next pair is
// converted (NextPair); the first pair of a call is converted before its tiles start.
template <class F>
void matmulPacked(const BF16Tiles& x, const uint8_t* w, const MatmulRange& range) {
  const size_t units8 = F::units(x.cols) * F::kTiles, steps = x.cols / kStepValues, groupBytes = F::groupBytes(x.cols);
  const size_t pairTiles = 2 * steps * kTileValues;
  // step() calls per pair: one per tile step of each activation row-tile pair.
  const size_t tileSteps = (x.rows + 2 * kTileRows - 1) / (2 * kTileRows) * steps;
  thread_local std::vector<uint8_t> b8[2];
  thread_local std::vector<float> scales8[2];
  thread_local std::vector<uint16_t> b16;  // two pairs' bf16 tiles: the one multiplied, the one converted
  if (b16.size() < 2 * pairTiles) b16.resize(2 * pairTiles);
  const auto groupsFrom = [&](size_t r) { return r < range.rowEnd ? std::min<size_t>(2, (range.rowEnd - r) / kPackRows) : 0; };
  // The pair from weight row r unpacked, to be converted into bf16 tiles at b.
  const auto unpackPair = [&](size_t r, uint16_t* b) {
    UnpackedGroup groups[2];
    uint16_t* dst[2] = {b, b + steps * kTileValues};
    const size_t count = groupsFrom(r);
    for (size_t j = 0; j < count; j++) groups[j] = unpackGroup<F>(w + (r / kPackRows + j) * groupBytes, units8, b8[j], scales8[j]);
    const size_t after = r + 2 * kPackRows;
    return NextPair<F>(groups, dst, count, units8, w + after / kPackRows * groupBytes, groupsFrom(after) * groupBytes, tileSteps);
  };
  configureTiles<64>();
  unpackPair(range.rowBegin, b16.data()).finish();
  for (size_t r = range.rowBegin, current = 0; r < range.rowEnd; r += 2 * kPackRows, current ^= 1) {
    const uint16_t* b0 = b16.data() + current * pairTiles;
    NextPair<F> next = groupsFrom(r + 2 * kPackRows) > 0 ? unpackPair(r + 2 * kPackRows, b16.data() + (current ^ 1) * pairTiles) : NextPair<F>();
    if (groupsFrom(r) == 2) {
      rowTiles<2>(x, b0, b0 + steps * kTileValues, steps, range.out + r, range.outStride, next);
    } else {
      rowTiles<1>(x, b0, b0, steps, range.out + r, range.outStride, next);
    }
    next.finish();
  }
  _tile_release();
}

// The kernel for packed weights of a GGML type, or nullptr for a type without a packed AMX format.
BF16Kernels::Packed packedKernel(int type) {
  switch (type) {
    case kQ8_0: return matmulPacked<Q8_0Amx>;
    case kQ4_0: return matmulPacked<Nibble32Amx<false>>;
    case kIQ4_NL: return matmulPacked<Nibble32Amx<true>>;
    case kQ3_K: return matmulPacked<Q3_KAmx>;
    case kQ4_K: return matmulPacked<Q4_KLayoutAmx<false>>;
    case kQ5_K: return matmulPacked<Q4_KLayoutAmx<true>>;
    case kQ6_K: return matmulPacked<Q6_KAmx>;
    case kIQ4_XS: return matmulPacked<IQ4_XSAmx>;
    default: return nullptr;
  }
}

// Below this many activation rows the int8 tiles stay: dequantizing a group costs about as much as a few
// row tiles' multiplies, so it pays only over enough rows.
constexpr size_t kBF16From = 64;

}  // namespace

const KernelSet& avx512AmxBF16Kernels() {
  static const BF16Kernels kBF16{kBF16From, layoutRows, packedKernel};
  static const KernelSet kSet = [] {
    KernelSet k = avx512AmxKernels();
    k.isa = "avx512-amx-bf16";
    k.bf16 = &kBF16;
    return k;
  }();
  return kSet;
}

}  // namespace vserve
