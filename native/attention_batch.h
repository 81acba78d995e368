// A token-packed batch's attention, shared by the contiguous and paged layouts: validates the query
// shape, cuts the work into (token, position range) units (attention_units.h), runs them on the pool and
// combines them, and reports scores where asked (attention_scores.h).
#pragma once
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attention_core.h"
#include "attention_scores.h"
#include "attention_units.h"
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
  size_t window;   // sliding window in rows (0: none; see AttentionShape)
  float softcap;   // score soft-cap (0: none)
  KVFormats formats;
  const Residual* ring;  // the residual window (ringRows 0: none)
  const int32_t* slots;  // each token's slot
  size_t rotateBlock;    // the cache is Walsh-Hadamard rotated in blocks of this many values (0: not)
  const ScoreRequest* scores;  // nullptr: none asked
};

// Reads attention's (window, softcap) at `first`: a window in rows (0: none) and a positive finite
// soft-cap (0: none).
constexpr size_t kAttentionOptionArgs = 2;
inline void attentionOptionArgs(const Args& args, size_t first, size_t& window, float& softcap) {
  window = args.index(first, "window", size_t(INT32_MAX));
  const double cap = args.number(first + 1, "softcap");
  if (!(cap >= 0.0 && cap < 1e30)) args.rangeError("softcap (" + std::to_string(cap) + ") must be 0 (none) or positive and finite");
  softcap = float(cap);
}

// Whether the batch runs with llama.cpp's arithmetic (KernelSet::attendF32InLlamaCppOrder): where the kernel
// set has it, for f32 K and V read in place (no residual ring, no rotation) and a head size it takes.
inline bool runsInLlamaCppOrder(const KernelSet& k, const AttentionBatch& b) {
  return k.attendF32InLlamaCppOrder != nullptr && b.formats.key == kKVF32 && b.formats.value == kKVF32 && b.ring->ringRows == 0 &&
         b.rotateBlock == 0 && b.headDim % 64 == 0 && b.headDim <= 256;
}

// Units of (tokens, KV head): the whole softmax row is needed at once, so a token's positions are never
// split, and a decode step still has a unit per KV head for the threads. Tokens that add their scores into
// the same accumulator share a unit and go in token order, so results never depend on the threads.
template <class RowsFor>
void runAttentionInLlamaCppOrder(const KernelSet& k, const AttentionBatch& b, RowsFor&& rowsFor) {
  const size_t group = b.nHeads / b.kvHeads, d = b.headDim, rowFloats = b.nHeads * d;
  std::vector<size_t> order(b.tokens);  // tokens, voters' grouped by accumulator
  std::vector<std::pair<size_t, size_t>> spans;  // [start, end) of order per unit (before the KV head split)
  for (size_t t = 0; t < b.tokens; t++) order[t] = t;
  const auto voter = [&](size_t t) { return b.scores ? b.scores->voters[t] : -1; };
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return voter(x) < voter(y); });
  for (size_t i = 0; i < order.size();) {
    size_t j = i + 1;
    if (voter(order[i]) >= 0) while (j < order.size() && voter(order[j]) == voter(order[i])) j++;
    spans.push_back({i, j});
    i = j;
  }
  pool().parallelFor(spans.size() * b.kvHeads, [&](size_t u) {
    thread_local std::vector<const float*> keys, values;
    const size_t kv = u % b.kvHeads;
    for (size_t i = spans[u / b.kvHeads].first; i < spans[u / b.kvHeads].second; i++) {
      const size_t t = order[i];
      const size_t first = firstRow(b.positions, t, b.window), count = size_t(b.positions[t]) + 1 - first;
      keys.resize(count);
      values.resize(count);
      const auto layout = rowsFor(t);
      TileRows tile;
      for (size_t p0 = 0; p0 < count; p0 += kPositionTile) {
        const size_t n = std::min(kPositionTile, count - p0);
        layout.fill(first + p0, n, tile);
        for (size_t p = 0; p < n; p++) {
          keys[p0 + p] = reinterpret_cast<const float*>(tile.keys[p]) + kv * d;
          values[p0 + p] = reinterpret_cast<const float*>(tile.values[p]) + kv * d;
        }
      }
      float* sums = voter(t) >= 0 ? b.scores->acc + (size_t(voter(t)) * b.kvHeads + kv) * b.scores->stride + first : nullptr;
      const size_t at = t * rowFloats + kv * group * d;
      k.attendF32InLlamaCppOrder({b.q.data + at, group, d, keys.data(), values.data(), first, count, b.scale, b.softcap,
                                  b.out.data + at, sums});
    }
  });
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
  if (runsInLlamaCppOrder(k, b)) return runAttentionInLlamaCppOrder(k, b, rowsFor);
  const AttentionHeads heads{b.nHeads, b.kvHeads, b.headDim, b.scale, b.softcap};
  const std::vector<AttentionUnit> units = planUnits(b.positions, b.tokens, size_t(pool().threads()), b.window);
  std::optional<ScorePlan> scores;
  if (b.scores) scores.emplace(*b.scores, b.positions, b.tokens, b.nHeads, b.kvHeads, units, b.window);

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
    thread_local ScoreTilesStorage keptWeights;
    const AttentionUnit& u = units[i];
    ScoreTiles view{};
    ScoreTiles* keep = scores ? scores->tiles(u, i, keptWeights, view) : nullptr;
    const float* q = queries + u.token * rowFloats;
    startPartial(partials[i], b.nHeads, b.headDim);
    // Positions the residual window still holds are read from its f16 ring.
    const size_t slot = size_t(b.slots[u.token]);
    const size_t split = std::min(u.end, std::max(u.begin, residualSplit(*b.ring, slot, size_t(b.positions[u.token]))));
    if (u.begin < split) attendRows(k, rowsFor(u.token), b.formats, q, heads, u.begin, split, partials[i], scratch, keep);
    if (split < u.end) {
      const KVFormats f16{kKVF16, kKVF16, b.formats.rowValues, b.ring->ringRowBytes};
      attendRows(k, RingRows{*b.ring, slot}, f16, q, heads, split, u.end, partials[i], scratch, keep);
    }
    if (u.ranges == 1) {
      for (size_t h = 0; h < b.nHeads; h++) k.scale(partials[i].out + h * b.headDim, 1.0f / partials[i].sum[h], b.headDim);
      if (keep) scores->finishUnit(k, u, *keep, partials[i]);
    }
  });
  for (size_t i = 0; i < units.size(); i += units[i].ranges) {
    if (units[i].ranges > 1) {
      mergeRanges(k, partials, i, units[i].ranges, b.nHeads, b.headDim, b.out.data + units[i].token * rowFloats);
    }
  }
  if (scores) scores->finish(k, units, partials);
  if (b.rotateBlock > 0) hadamardInPlace(b.out.data, qLen, b.rotateBlock);
}

}  // namespace vserve
