// A token-packed batch's attention, shared by the contiguous and paged layouts: validates the query
// shape, cuts the work into (token, position range) units, runs them on the pool and combines them.
//
// A unit covers all query heads of its token (attention_core.h). A batch of few tokens - decode of one
// or a few sequences - would leave threads idle with one unit per token, so then each token's positions
// are split into several ranges (as flash-decoding does on GPUs) whose partial softmax results are
// merged afterwards; results equal the unsplit ones up to f32 rounding.
#pragma once
#include <string>
#include <vector>

#include "attention_core.h"
#include "cpu_features.h"
#include "js_args.h"
#include "kv_store.h"
#include "thread_pool.h"

namespace vserve {

struct AttentionBatch {
  ArrayArg<float> out;
  ArrayArg<float> q;
  const int32_t* positions;
  size_t tokens;
  size_t nHeads;
  size_t kvHeads;
  size_t headDim;
  float scale;
  KVFormats formats;
  const Residual* ring;  // the residual window (ringRows 0: none)
  const int32_t* slots;  // each token's slot
  size_t rotateBlock;    // the cache is Walsh-Hadamard rotated in blocks of this many values (0: not)
};

// A split range is at least one tile: merging costs about one output row per range, so even short
// decodes (a few hundred positions) gain from using every thread.
constexpr size_t kMinSplitPositions = kPositionTile;

struct AttentionUnit {
  size_t token;
  size_t begin;
  size_t end;
  size_t ranges;  // how many units this token has (1: the unit writes the final output)
};

// Units in token order; a token's ranges are consecutive.
inline std::vector<AttentionUnit> planUnits(const AttentionBatch& b, size_t threads) {
  const size_t wanted = b.tokens >= 2 * threads ? 1 : (2 * threads + b.tokens - 1) / b.tokens;
  std::vector<AttentionUnit> units;
  units.reserve(b.tokens * wanted);
  for (size_t t = 0; t < b.tokens; t++) {
    const size_t len = size_t(b.positions[t]) + 1;
    const size_t ranges = std::max<size_t>(1, std::min(wanted, len / kMinSplitPositions));
    // Range length rounded up to whole tiles, so only a token's last range has a partial tile.
    const size_t step = ((len + ranges - 1) / ranges + kPositionTile - 1) / kPositionTile * kPositionTile;
    const size_t used = (len + step - 1) / step;
    for (size_t i = 0; i < used; i++) units.push_back({t, i * step, std::min(len, (i + 1) * step), used});
  }
  return units;
}

// Folds a token's ranges (partials [first, first + count)) into its output: per head, each range's sum
// and output are rescaled to the largest max, added, and the output divided by the total sum.
inline void mergeRanges(const KernelSet& k, const std::vector<PartialAttention>& partials, size_t first, size_t count,
                        size_t nHeads, size_t d, float* out) {
  for (size_t h = 0; h < nHeads; h++) {
    float max = -INFINITY;
    for (size_t i = first; i < first + count; i++) max = std::max(max, partials[i].max[h]);
    float sum = 0.0f;
    std::fill_n(out + h * d, d, 0.0f);
    for (size_t i = first; i < first + count; i++) {
      const float w = std::exp(partials[i].max[h] - max);
      sum += w * partials[i].sum[h];
      k.axpy(out + h * d, partials[i].out + h * d, w, d);
    }
    k.scale(out + h * d, 1.0f / sum, d);
  }
}

// rowsFor(token) gives the layout's row filler (see attendRows) for that token's sequence.
template <class RowsFor>
void runAttention(const Args& args, const AttentionBatch& b, RowsFor&& rowsFor) {
  if (b.nHeads == 0 || b.nHeads % b.kvHeads != 0) {
    args.rangeError("nHeads (" + std::to_string(b.nHeads) + ") must be a positive multiple of kvHeads (" +
                    std::to_string(b.kvHeads) + ")");
  }
  const size_t rowFloats = checkedMul(args, b.nHeads, b.headDim, "q row");
  const size_t qLen = checkedMul(args, b.tokens, rowFloats, "q size");
  args.requireLength(b.q, qLen, "q");
  args.requireLength(b.out, qLen, "out");
  args.requireDisjoint(b.out, qLen, b.q, qLen, "out and q");
  const KernelSet& k = kernels();
  const AttentionHeads heads{b.nHeads, b.kvHeads, b.headDim, b.scale};
  const std::vector<AttentionUnit> units = planUnits(b, size_t(pool().threads()));

  // Softmax statistics for every unit; separate outputs only for units of split tokens.
  std::vector<float> stats(units.size() * 2 * b.nHeads);
  size_t splitFloats = 0;
  for (const AttentionUnit& u : units) splitFloats += u.ranges > 1 ? rowFloats : 0;
  std::vector<float> splitOut(splitFloats);
  std::vector<PartialAttention> partials(units.size());
  for (size_t i = 0, at = 0; i < units.size(); i++) {
    float* out = b.out.data + units[i].token * rowFloats;
    if (units[i].ranges > 1) {
      out = splitOut.data() + at;
      at += rowFloats;
    }
    partials[i] = {out, stats.data() + i * 2 * b.nHeads, stats.data() + (i * 2 + 1) * b.nHeads};
  }

  // A rotated cache holds Hk and Hv: the query is rotated to match, and the output turned back below.
  std::vector<float> rotatedQueries;
  const float* queries = b.q.data;
  if (b.rotateBlock > 0) {
    rotatedQueries.assign(b.q.data, b.q.data + qLen);
    hadamardInPlace(rotatedQueries.data(), qLen, b.rotateBlock);
    queries = rotatedQueries.data();
  }
  pool().parallelFor(units.size(), [&](size_t i) {
    thread_local AttentionScratch scratch;
    const AttentionUnit& u = units[i];
    const float* q = queries + u.token * rowFloats;
    startPartial(partials[i], b.nHeads, b.headDim);
    // Positions the residual window still holds are read from its f16 ring.
    const size_t slot = size_t(b.slots[u.token]);
    const size_t split = std::min(u.end, std::max(u.begin, residualSplit(*b.ring, slot, size_t(b.positions[u.token]))));
    if (u.begin < split) attendRows(k, rowsFor(u.token), b.formats, q, heads, u.begin, split, partials[i], scratch);
    if (split < u.end) {
      const KVFormats f16{kKVF16, kKVF16, b.formats.rowValues, b.ring->ringRowBytes};
      attendRows(k, RingRows{*b.ring, slot}, f16, q, heads, split, u.end, partials[i], scratch);
    }
    if (u.ranges == 1) {
      for (size_t h = 0; h < b.nHeads; h++) k.scale(partials[i].out + h * b.headDim, 1.0f / partials[i].sum[h], b.headDim);
    }
  });
  for (size_t i = 0; i < units.size(); i += units[i].ranges) {
    if (units[i].ranges > 1) {
      mergeRanges(k, partials, i, units[i].ranges, b.nHeads, b.headDim, b.out.data + units[i].token * rowFloats);
    }
  }
  if (b.rotateBlock > 0) hadamardInPlace(b.out.data, qLen, b.rotateBlock);
}

}  // namespace vserve
