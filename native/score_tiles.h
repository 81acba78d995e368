// Where attendRows leaves the softmax weights of a unit whose token reports attention scores
// (attention_scores.h). Online softmax leaves each tile's weights relative to the running max at that
// tile; the final max and sum are only known once the unit (or, for a split token, every range) is done.
// So the weights are kept per head with that tile's max, and turned into probabilities afterwards with
// at most one exp per (tile, head) instead of one per weight.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernel_set.h"

namespace vserve {

struct ScoreTiles {
  float* weights;       // [nHeads][stride]: head h's weight on position base + i at weights[h * stride + i]
  size_t stride;        // the range's length and a tile's worth of slack (see rowFloats)
  size_t base;          // the unit's first position
  float* tileMax;       // [tile][nHeads]: each head's running max after the tile (its weights' reference)
  uint32_t* tileStart;  // [tile]: the tile's first position, relative to base
  size_t nHeads;
  size_t tiles = 0;
  size_t filled = 0;    // positions taken so far, relative to base

  // Most tiles a range of `len` positions takes: attendRows may run twice per unit (cache rows, then the
  // residual ring's), so one more partial tile than len / tile.
  static size_t maxTiles(size_t len, size_t tile) { return (len + tile - 1) / tile + 1; }
  // Floats per head row for a range of `len` positions: a kernel may write a whole tile's scores past a
  // partial tile's count, which must stay in the row (the slack) or be written over by the next tile.
  static size_t rowFloats(size_t len, size_t tile) { return len + tile; }

  // Where attendRows puts the scores of the tile starting at position p0 (head h at + h * stride).
  float* at(size_t p0) const { return weights + (p0 - base); }

  // The tile at p0 of `count` positions is done: its weights are in place, max is each head's running
  // max after it.
  void endTile(const float* max, size_t p0, size_t count) {
    std::memcpy(tileMax + tiles * nHeads, max, nHeads * sizeof(float));
    tileStart[tiles++] = uint32_t(p0 - base);
    filled = p0 - base + count;
  }

  // dst[i] += sum over heads h0 .. h0 + group - 1 of head h's probability on position base + i, given
  // each head's final softmax max and sum (indexed by head).
  void addProbabilities(const KernelSet& k, size_t h0, size_t group, const float* max, const float* sum, float* dst) const {
    constexpr size_t kHeads = 16;  // heads added per pass over dst
    float reference[kHeads], factor[kHeads];
    for (size_t c0 = h0; c0 < h0 + group; c0 += kHeads) {
      const size_t heads = std::min(kHeads, h0 + group - c0);
      std::fill_n(reference, heads, NAN);
      for (size_t t = 0; t < tiles; t++) {
        const size_t begin = tileStart[t], end = t + 1 < tiles ? tileStart[t + 1] : filled;
        // Running maxes settle after a few tiles: one exp per head and distinct max.
        for (size_t h = 0; h < heads; h++) {
          const float m = tileMax[t * nHeads + c0 + h];
          if (!(m == reference[h])) {
            reference[h] = m;
            factor[h] = std::exp(m - max[c0 + h]) / sum[c0 + h];
          }
        }
        k.addRows(dst + begin, weights + c0 * stride + begin, stride, factor, heads, end - begin);
      }
    }
  }
};

// Backing memory for one unit's ScoreTiles (grown as needed, reused).
struct ScoreTilesStorage {
  std::vector<float> weights;
  std::vector<float> tileMax;
  std::vector<uint32_t> tileStart;

  ScoreTiles tilesFor(size_t nHeads, size_t begin, size_t end, size_t tile) {
    const size_t len = end - begin, tiles = ScoreTiles::maxTiles(len, tile), row = ScoreTiles::rowFloats(len, tile);
    if (weights.size() < nHeads * row) weights.resize(nHeads * row);
    if (tileMax.size() < tiles * nHeads) tileMax.resize(tiles * nHeads);
    if (tileStart.size() < tiles) tileStart.resize(tiles);
    return {weights.data(), row, begin, tileMax.data(), tileStart.data(), nHeads};
  }
};

}  // namespace vserve
