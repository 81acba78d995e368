// The attention inner loop shared by the contiguous and the paged KV layouts, so the two differ only
// in how a position's K/V row address is found (a fair baseline for benchmarks).
//
// One call handles one token's query heads [h0, h0 + group) against one KV head. Scores are computed a
// tile of kPositionTile positions at a time and folded into a running (max, sum, accumulator) - online
// softmax - so memory stays O(headDim). The layout fills the tile's row pointers once per tile, outside
// the per-head loop, so its lookup cost is paid once per (tile, KV head), not per query head.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernel_set.h"

namespace vserve {

constexpr size_t kPositionTile = 64;

struct TileRows {
  const float* keys[kPositionTile];
  const float* values[kPositionTile];
};

struct AttentionScratch {
  std::vector<float> scores;
  std::vector<float> max;
  std::vector<float> sum;
  std::vector<float> correction;
};

// Rows: a layout with `void fill(size_t p0, size_t count, TileRows& rows) const`, pointing rows.keys[p]
// and rows.values[p] at this KV head's row for position p0 + p.
template <class Rows>
void attendGroup(const KernelSet& k, const Rows& layout, const float* q, float* out, size_t lastPos, size_t d,
                 size_t group, float scale, AttentionScratch& scratch) {
  scratch.scores.resize(group * kPositionTile);
  scratch.max.assign(group, -INFINITY);
  scratch.sum.assign(group, 0.0f);
  scratch.correction.resize(group);
  for (size_t h = 0; h < group; h++) std::fill_n(out + h * d, d, 0.0f);
  TileRows rows;
  for (size_t p0 = 0; p0 <= lastPos; p0 += kPositionTile) {
    const size_t count = std::min(kPositionTile, lastPos + 1 - p0);
    layout.fill(p0, count, rows);
    // All heads' scores first: the tile's keys are then read (and, in SIMD kernels, rearranged) once.
    if (k.scoreTile) {
      k.scoreTile(q, group, rows.keys, count, d, scale, scratch.scores.data(), kPositionTile);
    } else {
      for (size_t h = 0; h < group; h++) {
        for (size_t p = 0; p < count; p++) scratch.scores[h * kPositionTile + p] = k.dot(q + h * d, rows.keys[p], d) * scale;
      }
    }
    k.softmaxTile(scratch.scores.data(), group, kPositionTile, count, scratch.max.data(), scratch.sum.data(),
                  scratch.correction.data());
    for (size_t h = 0; h < group; h++) {
      if (scratch.correction[h] != 1.0f) k.scale(out + h * d, scratch.correction[h], d);
      if (!k.accumulateTile) {
        const float* s = &scratch.scores[h * kPositionTile];
        for (size_t p = 0; p < count; p++) k.axpy(out + h * d, rows.values[p], s[p], d);
      }
    }
    if (k.accumulateTile) k.accumulateTile(out, group, rows.values, scratch.scores.data(), kPositionTile, count, d);
  }
  for (size_t h = 0; h < group; h++) k.scale(out + h * d, 1.0f / scratch.sum[h], d);
}

}  // namespace vserve
