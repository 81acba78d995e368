// The attention inner loop shared by the contiguous and the paged KV layouts, so the two differ only
// in how a position's K/V row address is found (a fair baseline for benchmarks).
//
// One call attends one token's query heads (all KV heads' groups) to a range of its sequence's
// positions. Positions go a tile of kPositionTile at a time; each tile's scores are folded into a
// running (max, sum, accumulator) per head - online softmax - so memory stays O(heads x headDim).
// All KV heads of a tile are done before the next tile, so the cache rows (every KV head side by side)
// are read front to back; the tile kernels prefetch the next tile's rows as they go.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernel_set.h"

namespace vserve {

constexpr size_t kPositionTile = 64;

// Row starts (KV head 0) of a tile's positions in the K and V caches.
struct TileRows {
  const float* keys[kPositionTile];
  const float* values[kPositionTile];
};

struct AttentionScratch {
  std::vector<float> scores;      // [nHeads][kPositionTile]
  std::vector<float> correction;  // [nHeads]
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
  size_t group() const { return nHeads / kvHeads; }
};

// Rows: a layout with `void fill(size_t p0, size_t count, TileRows& rows) const`, pointing rows.keys[p]
// and rows.values[p] at the start of the cache row of position p0 + p.
template <class Rows>
void attendRange(const KernelSet& k, const Rows& layout, const float* q, const AttentionHeads& a, size_t begin,
                 size_t end, const PartialAttention& r, AttentionScratch& scratch) {
  const size_t group = a.group(), d = a.d;
  scratch.scores.resize(a.nHeads * kPositionTile);
  scratch.correction.resize(a.nHeads);
  std::fill_n(r.max, a.nHeads, -INFINITY);
  std::fill_n(r.sum, a.nHeads, 0.0f);
  std::fill_n(r.out, a.nHeads * d, 0.0f);
  TileRows tiles[2];
  const float* keys[kPositionTile];
  const float* values[kPositionTile];
  const float* nextKeys[kPositionTile];
  const float* nextValues[kPositionTile];
  layout.fill(begin, std::min(kPositionTile, end - begin), tiles[0]);
  for (size_t p0 = begin, t = 0; p0 < end; p0 += kPositionTile, t ^= 1) {
    const size_t count = std::min(kPositionTile, end - p0);
    const TileRows& rows = tiles[t];
    // The next tile's rows, which the tile kernels prefetch while they work on this one.
    const size_t next = p0 + kPositionTile < end ? std::min(kPositionTile, end - p0 - kPositionTile) : 0;
    if (next > 0) layout.fill(p0 + kPositionTile, next, tiles[t ^ 1]);
    for (size_t kv = 0; kv < a.kvHeads; kv++) {
      for (size_t p = 0; p < count; p++) {
        keys[p] = rows.keys[p] + kv * d;
        values[p] = rows.values[p] + kv * d;
      }
      for (size_t p = 0; p < next; p++) {
        nextKeys[p] = tiles[t ^ 1].keys[p] + kv * d;
        nextValues[p] = tiles[t ^ 1].values[p] + kv * d;
      }
      const size_t h0 = kv * group;
      const float* qh = q + h0 * d;
      float* out = r.out + h0 * d;
      float* scores = scratch.scores.data() + h0 * kPositionTile;
      // All of the group's scores first: the tile's keys are then read (and, in SIMD kernels,
      // rearranged) once for the group.
      if (k.scoreTile) {
        k.scoreTile(qh, group, keys, count, d, a.scale, scores, kPositionTile, NextRows{nextKeys, next});
      } else {
        for (size_t h = 0; h < group; h++) {
          for (size_t p = 0; p < count; p++) scores[h * kPositionTile + p] = k.dot(qh + h * d, keys[p], d) * a.scale;
        }
      }
      float* correction = scratch.correction.data() + h0;
      k.softmaxTile(scores, group, kPositionTile, count, r.max + h0, r.sum + h0, correction);
      for (size_t h = 0; h < group; h++) {
        if (correction[h] != 1.0f) k.scale(out + h * d, correction[h], d);
      }
      if (k.accumulateTile) {
        k.accumulateTile(out, group, values, scores, kPositionTile, count, d, NextRows{nextValues, next});
      } else {
        for (size_t h = 0; h < group; h++) {
          for (size_t p = 0; p < count; p++) k.axpy(out + h * d, values[p], scores[h * kPositionTile + p], d);
        }
      }
    }
  }
}

}  // namespace vserve
