// How a token-packed attention batch is cut into units of work, and how a token's split ranges are
// combined again.
//
// A unit covers all query heads of its token (attention_core.h). A batch of few tokens - decode of one
// or a few sequences - would leave threads idle with one unit per token, so then each token's positions
// are split into several ranges (as flash-decoding does on GPUs) whose partial softmax results are
// merged afterwards; results equal the unsplit ones up to f32 rounding.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "attention_core.h"
#include "kernel_set.h"

namespace vserve {

// A split range is at least one tile: merging costs about one output row per range, so even short
// decodes (a few hundred positions) gain from using every thread.
constexpr size_t kMinSplitPositions = kPositionTile;

struct AttentionUnit {
  size_t token;
  size_t begin;
  size_t end;
  size_t ranges;  // how many units this token has (1: the unit writes the final output)
};

// The first row token t attends: 0, or with a sliding window of `window` rows (0: none) the window's first.
inline size_t firstRow(const int32_t* rows, size_t t, size_t window) {
  const size_t last = size_t(rows[t]);
  return window > 0 && last + 1 > window ? last + 1 - window : 0;
}

// Units in token order; a token's ranges are consecutive. Token t attends positions firstRow(t)..rows[t].
inline std::vector<AttentionUnit> planUnits(const int32_t* rows, size_t tokens, size_t threads, size_t window) {
  const size_t wanted = tokens >= 2 * threads ? 1 : (2 * threads + tokens - 1) / tokens;
  std::vector<AttentionUnit> units;
  units.reserve(tokens * wanted);
  for (size_t t = 0; t < tokens; t++) {
    const size_t first = firstRow(rows, t, window);
    const size_t len = size_t(rows[t]) + 1 - first;
    const size_t ranges = std::max<size_t>(1, std::min(wanted, len / kMinSplitPositions));
    // Range length rounded up to whole tiles, so only a token's last range has a partial tile.
    const size_t step = ((len + ranges - 1) / ranges + kPositionTile - 1) / kPositionTile * kPositionTile;
    const size_t used = (len + step - 1) / step;
    for (size_t i = 0; i < used; i++) units.push_back({t, first + i * step, first + std::min(len, (i + 1) * step), used});
  }
  return units;
}

// Head h's softmax max and sum over a token's ranges (partials [first, first + count)).
struct MergedSoftmax {
  float max;
  float sum;
};

inline MergedSoftmax mergedSoftmax(const std::vector<PartialAttention>& partials, size_t first, size_t count, size_t h) {
  float max = -INFINITY;
  for (size_t i = first; i < first + count; i++) max = std::max(max, partials[i].max[h]);
  float sum = 0.0f;
  for (size_t i = first; i < first + count; i++) sum += std::exp(partials[i].max[h] - max) * partials[i].sum[h];
  return {max, sum};
}

// Folds a token's ranges into its output: per head, each range's output is rescaled to the largest
// max, added, and divided by the total sum.
inline void mergeRanges(const KernelSet& k, const std::vector<PartialAttention>& partials, size_t first, size_t count,
                        size_t nHeads, size_t d, float* out) {
  for (size_t h = 0; h < nHeads; h++) {
    const MergedSoftmax m = mergedSoftmax(partials, first, count, h);
    std::fill_n(out + h * d, d, 0.0f);
    for (size_t i = first; i < first + count; i++) k.axpy(out + h * d, partials[i].out + h * d, std::exp(partials[i].max[h] - m.max), d);
    k.scale(out + h * d, 1.0f / m.sum, d);
  }
}

}  // namespace vserve
