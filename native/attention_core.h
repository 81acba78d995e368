// The attention inner loop shared by the contiguous and the paged KV layouts, so the two differ only
// in how a position's K/V row address is found (a fair baseline for benchmarks).
//
// One call attends one token's query heads (all KV heads' groups) to a range of its sequence's
// positions. Positions go a tile of kPositionTile at a time; each tile's scores are folded into a
// running (max, sum, accumulator) per head - online softmax - so memory stays O(heads x headDim).
// All KV heads of a tile are done before the next tile, so the cache rows (every KV head side by side)
// are read front to back; the tile kernels prefetch the next tile's rows as they go.
//
// Rows are stored in a KV format (kv_format.h). f32 rows go to the f32 tile kernels; other formats go
// to the kernel set's tile kernels for that format where it has them and the head slice is whole
// blocks; otherwise the tile's head slices are decoded into floats first (never more than a tile).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernel_set.h"
#include "kv_format.h"
#include "score_tiles.h"

namespace vserve {

constexpr size_t kPositionTile = 64;

// Row starts (KV head 0) of a tile's positions in the K and V caches.
struct TileRows {
  const uint8_t* keys[kPositionTile];
  const uint8_t* values[kPositionTile];
};

struct AttentionScratch {
  std::vector<float> scores;      // [nHeads][kPositionTile]
  std::vector<float> correction;  // [nHeads]
  std::vector<float> decoded;     // [kPositionTile][d]: a tile's head slices decoded to floats
  std::vector<int8_t> queryQuants;  // [nHeads][d]
  std::vector<float> queryScales;   // [nHeads][d / 32]
  std::vector<int32_t> querySums;   // [nHeads][d / 32]
};

// Where one (token, position range) unit of work leaves its result: per query head the running softmax
// max and sum and the output, unnormalized (out[h] / sum[h] is the attention output of the range).
struct PartialAttention {
  float* out;  // [nHeads][d]
  float* max;  // [nHeads]
  float* sum;  // [nHeads]
};

struct AttentionHeads {
  size_t nHeads;
  size_t kvHeads;
  size_t d;
  float scale;
  float softcap;  // > 0: scaled scores s become softcap * tanh(s / softcap) (Gemma 2); 0: none
  size_t group() const { return nHeads / kvHeads; }
};

// Gemma 2's logit soft-cap on a group's tile of scaled scores (`count` of each head's row).
inline void softcapScores(float* scores, size_t heads, size_t stride, size_t count, float cap) {
  const float inv = 1.0f / cap;
  for (size_t h = 0; h < heads; h++) {
    for (size_t p = 0; p < count; p++) scores[h * stride + p] = cap * std::tanh(scores[h * stride + p] * inv);
  }
}

// The formats of K and V, fixed for a call, and what decoding a row needs besides its address.
struct KVFormats {
  uint32_t key;
  uint32_t value;
  size_t rowValues;  // kvHeads x headDim
  size_t rowBytes;   // stride between rows (rows of a format's group are adjacent)
};

// How one side (K or V) of a tile is read: directly by a format kernel, as f32, or decoded.
struct SideReader {
  const KVFormatTraits& format;
  const KVTileKernels* direct;  // non-null: the format's kernel reads head slices in place
  bool f32;                     // f32 rows: the f32 tile kernels read them in place
};

inline SideReader sideReader(const KernelSet& k, uint32_t id, size_t kvHeads, size_t d, bool keys) {
  const KVFormatTraits& f = kvFormat(id);
  bool aligned = true;
  for (size_t h = 0; h < kvHeads; h++) aligned = aligned && f.sliceAligned(h * d, d);
  const KVTileKernels* t = k.kvTiles ? &k.kvTiles[id] : nullptr;
  const bool has = t && (keys ? t->score != nullptr : t->accumulate != nullptr);
  return {f, id != kKVF32 && aligned && has ? t : nullptr, id == kKVF32};
}

// q8_0 blocks of every query head (for integer-dot key kernels).
inline void quantizeQuery(const float* q, size_t nHeads, size_t d, AttentionScratch& s) {
  s.queryQuants.resize(nHeads * d);
  s.queryScales.resize(nHeads * d / 32);
  s.querySums.resize(nHeads * d / 32);
  for (size_t b = 0; b < nHeads * d / 32; b++) {
    const float* x = q + b * 32;
    float amax = 0.0f;
    for (int i = 0; i < 32; i++) amax = std::max(amax, std::fabs(x[i]));
    const float sc = amax / 127.0f, inv = sc != 0.0f ? 1.0f / sc : 0.0f;
    s.queryScales[b] = sc;
    int32_t sum = 0;
    for (int i = 0; i < 32; i++) sum += s.queryQuants[b * 32 + i] = int8_t(std::lrintf(x[i] * inv));
    s.querySums[b] = sum;
  }
}

// An empty partial result: attendRows then folds ranges of positions into it.
inline void startPartial(const PartialAttention& r, size_t nHeads, size_t d) {
  std::fill_n(r.max, nHeads, -INFINITY);
  std::fill_n(r.sum, nHeads, 0.0f);
  std::fill_n(r.out, nHeads * d, 0.0f);
}

// Rows: a layout with `void fill(size_t p0, size_t count, TileRows& rows) const`, pointing rows.keys[p]
// and rows.values[p] at the start of the cache row of position p0 + p. Folds positions [begin, end) into r.
// keep (non-null: the token reports scores) holds every tile's softmax weights: the kernels write the tile's
// scores straight into it instead of the scratch tile, so keeping them costs no copy.
template <class Rows>
void attendRows(const KernelSet& k, const Rows& layout, KVFormats formats, const float* q, const AttentionHeads& a,
                size_t begin, size_t end, const PartialAttention& r, AttentionScratch& scratch, ScoreTiles* keep = nullptr) {
  const size_t group = a.group(), d = a.d;
  scratch.scores.resize(a.nHeads * kPositionTile);
  scratch.correction.resize(a.nHeads);
  scratch.decoded.resize(kPositionTile * d);
  const SideReader keyReader = sideReader(k, formats.key, a.kvHeads, d, true);
  const SideReader valueReader = sideReader(k, formats.value, a.kvHeads, d, false);
  QueryBlocks queryBlocks{nullptr, nullptr, nullptr};
  if (keyReader.direct && (formats.key == kKVQ8_0 || formats.key == kKVQ4_0)) {
    quantizeQuery(q, a.nHeads, d, scratch);
    queryBlocks = {scratch.queryQuants.data(), scratch.queryScales.data(), scratch.querySums.data()};
  }
  TileRows tiles[2];
  const float* floatRows[kPositionTile];
  const float* nextFloatRows[kPositionTile];
  const uint8_t* byteRows[kPositionTile];
  const uint8_t* nextByteRows[kPositionTile];

  // Points floatRows / byteRows at head `kv`'s slices of `count` rows (decoding them when needed) and
  // the next tile's slices for prefetching. Returns the f32 rows to use when the side is not direct.
  auto slices = [&](const SideReader& side, const uint8_t* const* rows, const uint8_t* const* next, size_t p0,
                    size_t count, size_t nextCount, size_t kv) {
    const size_t first = kv * d, offset = side.format.rowBytes(first);
    // Only the arrays the side's kernel reads: this runs for every KV head of every tile.
    if (side.direct) {
      for (size_t p = 0; p < count; p++) byteRows[p] = rows[p] + offset;
      for (size_t p = 0; p < nextCount; p++) nextByteRows[p] = next[p] + offset;
      return;
    }
    if (side.f32) {
      for (size_t p = 0; p < count; p++) floatRows[p] = reinterpret_cast<const float*>(rows[p] + offset);
      for (size_t p = 0; p < nextCount; p++) nextFloatRows[p] = reinterpret_cast<const float*>(next[p] + offset);
      return;
    }
    float* decoded = scratch.decoded.data();
    for (size_t p = 0; p < count; p++) {
      side.format.decode(rows[p], first, d, decoded + p * d, formats.rowValues, (p0 + p) % side.format.groupTokens,
                         formats.rowBytes);
      floatRows[p] = decoded + p * d;
    }
  };

  layout.fill(begin, std::min(kPositionTile, end - begin), tiles[0]);
  for (size_t p0 = begin, t = 0; p0 < end; p0 += kPositionTile, t ^= 1) {
    const size_t count = std::min(kPositionTile, end - p0);
    const TileRows& rows = tiles[t];
    // The next tile's rows, which the tile kernels prefetch while they work on this one.
    const size_t next = p0 + kPositionTile < end ? std::min(kPositionTile, end - p0 - kPositionTile) : 0;
    if (next > 0) layout.fill(p0 + kPositionTile, next, tiles[t ^ 1]);
    float* const tileScores = keep ? keep->at(p0) : scratch.scores.data();
    const size_t stride = keep ? keep->stride : kPositionTile;
    for (size_t kv = 0; kv < a.kvHeads; kv++) {
      const size_t h0 = kv * group;
      const float* qh = q + h0 * d;
      float* out = r.out + h0 * d;
      float* scores = tileScores + h0 * stride;
      // All of the group's scores first: the tile's keys are then read (and, in SIMD kernels,
      // rearranged) once for the group.
      const size_t keyNext = keyReader.f32 || keyReader.direct ? next : 0;
      slices(keyReader, rows.keys, tiles[t ^ 1].keys, p0, count, keyNext, kv);
      if (keyReader.direct) {
        const QueryBlocks qb{queryBlocks.q ? queryBlocks.q + h0 * d : nullptr,
                             queryBlocks.s ? queryBlocks.s + h0 * d / 32 : nullptr,
                             queryBlocks.sums ? queryBlocks.sums + h0 * d / 32 : nullptr};
        keyReader.direct->score(qh, qb, group, byteRows, count, d, a.scale, scores, stride,
                                NextBytes{nextByteRows, keyNext});
      } else if (k.scoreTile) {
        k.scoreTile(qh, group, floatRows, count, d, a.scale, scores, stride, NextRows{nextFloatRows, keyNext});
      } else {
        for (size_t h = 0; h < group; h++) {
          for (size_t p = 0; p < count; p++) scores[h * stride + p] = k.dot(qh + h * d, floatRows[p], d) * a.scale;
        }
      }
      if (a.softcap > 0.0f) softcapScores(scores, group, stride, count, a.softcap);
      float* correction = scratch.correction.data() + h0;
      k.softmaxTile(scores, group, stride, count, r.max + h0, r.sum + h0, correction);
      for (size_t h = 0; h < group; h++) {
        if (correction[h] != 1.0f) k.scale(out + h * d, correction[h], d);
      }
      const size_t valueNext = valueReader.f32 || valueReader.direct ? next : 0;
      slices(valueReader, rows.values, tiles[t ^ 1].values, p0, count, valueNext, kv);
      if (valueReader.direct) {
        valueReader.direct->accumulate(out, group, byteRows, scores, stride, count, d,
                                       NextBytes{nextByteRows, valueNext});
      } else if (k.accumulateTile) {
        k.accumulateTile(out, group, floatRows, scores, stride, count, d, NextRows{nextFloatRows, valueNext});
      } else {
        for (size_t h = 0; h < group; h++) {
          for (size_t p = 0; p < count; p++) k.axpy(out + h * d, floatRows[p], scores[h * stride + p], d);
        }
      }
    }
    if (keep) keep->endTile(r.max, p0, count);
  }
}

}  // namespace vserve
