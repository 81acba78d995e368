// The optional scores output of attention, for KV eviction policies (src/backend/backend.ts
// AttentionScores): for each token i with voters[i] >= 0 and each KV head kv,
//   acc[(voters[i] * kvHeads + kv) * stride + r] += sum over kv's query heads of token i's softmax weight
//   on row r, for every row r <= rows[i].
//
// A voting unit keeps its tiles' weights (score_tiles.h) and turns them into probabilities once its
// token's final softmax max and sum are known: at the unit's end, or after every unit for a split token.
// Tokens that are the only voter of their accumulator add into it directly (their units touch disjoint
// rows). Tokens sharing an accumulator write their own buffers, added into it afterwards in token order,
// so results never depend on which thread ran what.
#pragma once
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "attention_units.h"
#include "js_args.h"
#include "kernel_set.h"
#include "score_tiles.h"
#include "thread_pool.h"

namespace vserve {

struct ScoreRequest {
  const int32_t* voters;  // [tokens]: -1 = adds nothing
  float* acc;
  size_t stride;
};

// Reads the optional (voters, acc, stride) at `first`; false when not given. Validates them against the
// batch: one voter per token, none below -1, acc long enough for the largest, stride above every
// voting token's last row, and acc apart from out and q.
constexpr size_t kScoreArgs = 3;
inline bool scoreArgs(const Args& args, size_t first, const ArrayArg<int32_t>& rows, size_t kvHeads,
                      const ArrayArg<float>& out, const ArrayArg<float>& q, ScoreRequest& r) {
  if (!args.given(first)) return false;
  const ArrayArg<int32_t> voters = args.int32(first, "voters");
  const ArrayArg<float> acc = args.float32(first + 1, "acc");
  const size_t stride = args.index(first + 2, "stride");
  if (voters.length != rows.length) {
    args.rangeError("voters has " + std::to_string(voters.length) + " entries but the batch has " +
                    std::to_string(rows.length) + " tokens");
  }
  int32_t most = -1;
  for (size_t i = 0; i < voters.length; i++) {
    const int32_t v = voters.data[i];
    if (v < -1) args.rangeError("voters[" + std::to_string(i) + "] = " + std::to_string(v) + " is below -1");
    if (v < 0) continue;
    most = std::max(most, v);
    if (size_t(rows.data[i]) >= stride) {
      args.rangeError("scores stride " + std::to_string(stride) + " is too small: token " + std::to_string(i) +
                      " attends rows 0.." + std::to_string(rows.data[i]));
    }
  }
  const size_t need = checkedMul(args, checkedMul(args, size_t(most + 1), kvHeads, "acc size"), stride, "acc size");
  if (acc.length < need) {
    args.rangeError("acc has " + std::to_string(acc.length) + " elements, too few for voter " + std::to_string(most) +
                    ": needs (" + std::to_string(most) + " + 1) x " + std::to_string(kvHeads) + " KV heads x stride " +
                    std::to_string(stride) + " = " + std::to_string(need));
  }
  args.requireDisjoint(acc, acc.length, out, out.length, "acc and out");
  args.requireDisjoint(acc, acc.length, q, q.length, "acc and q");
  r = {voters.data, acc.data, stride};
  return true;
}

class ScorePlan {
 public:
  ScorePlan(const ScoreRequest& req, const int32_t* rows, size_t tokens, size_t nHeads, size_t kvHeads,
            const std::vector<AttentionUnit>& units, size_t window)
      : req_(req), rows_(rows), nHeads_(nHeads), kvHeads_(kvHeads), group_(nHeads / kvHeads),
        dst_(tokens, nullptr), dstStride_(tokens, req.stride), staged_(tokens, false), first_(tokens, 0) {
    for (size_t t = 0; t < tokens; t++) first_[t] = firstRow(rows, t, window);
    // Voting tokens by accumulator, in token order within one.
    std::vector<std::pair<int32_t, size_t>> byVoter;
    for (size_t t = 0; t < tokens; t++) {
      if (req.voters[t] >= 0) byVoter.push_back({req.voters[t], t});
    }
    std::stable_sort(byVoter.begin(), byVoter.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    size_t staging = 0;
    for (size_t i = 0; i < byVoter.size();) {
      size_t j = i;
      while (j < byVoter.size() && byVoter[j].first == byVoter[i].first) j++;
      if (j - i == 1) {
        dst_[byVoter[i].second] = req.acc + size_t(byVoter[i].first) * kvHeads * req.stride;
      } else {
        shared_.push_back({byVoter[i].first, sharedTokens_.size(), j - i});
        for (size_t s = i; s < j; s++) {
          const size_t t = byVoter[s].second;
          sharedTokens_.push_back(t);
          staged_[t] = true;
          dstStride_[t] = len(t);
          staging += kvHeads * len(t);
        }
      }
      i = j;
    }
    // Written before read (each writer clears its rows).
    float* const stagingRows = grown(buffers().staging, staging);
    for (size_t t = 0, at = 0; t < tokens; t++) {
      if (!staged_[t]) continue;
      dst_[t] = stagingRows + at;
      at += kvHeads * len(t);
    }
    // Split voting units keep their weights until every range of their token is done.
    size_t weights = 0, tiles = 0;
    for (size_t i = 0; i < units.size(); i++) {
      const AttentionUnit& u = units[i];
      if (u.ranges == 1 || !dst_[u.token]) continue;
      splitUnits_.push_back(i);
      weights += nHeads * ScoreTiles::rowFloats(u.end - u.begin, kPositionTile);
      tiles += ScoreTiles::maxTiles(u.end - u.begin, kPositionTile);
    }
    float* const splitWeights = grown(buffers().splitWeights, weights);
    splitMax_.resize(tiles * nHeads);
    splitStarts_.resize(tiles);
    if (!splitUnits_.empty()) splitTiles_.resize(units.size());
    for (size_t n = 0, w = 0, m = 0; n < splitUnits_.size(); n++) {
      const AttentionUnit& u = units[splitUnits_[n]];
      const size_t len = u.end - u.begin, row = ScoreTiles::rowFloats(len, kPositionTile);
      splitTiles_[splitUnits_[n]] = {splitWeights + w, row, u.begin, splitMax_.data() + m * nHeads,
                                     splitStarts_.data() + m, nHeads};
      w += nHeads * row;
      m += ScoreTiles::maxTiles(len, kPositionTile);
    }
  }

  // Where unit i keeps its weights (an unsplit unit: in `local`, this thread's storage, through `view`),
  // or nullptr when its token does not vote.
  ScoreTiles* tiles(const AttentionUnit& u, size_t i, ScoreTilesStorage& local, ScoreTiles& view) {
    if (!dst_[u.token]) return nullptr;
    if (u.ranges > 1) return &splitTiles_[i];
    view = local.tilesFor(nHeads_, u.begin, u.end, kPositionTile);
    return &view;
  }

  // An unsplit unit's token: its max and sum are final. Rows before a sliding window get nothing.
  void finishUnit(const KernelSet& k, const AttentionUnit& u, const ScoreTiles& t, const PartialAttention& r) const {
    for (size_t kv = 0; kv < kvHeads_; kv++) {
      float* row = dst_[u.token] + kv * dstStride_[u.token];
      if (staged_[u.token]) std::fill_n(row, len(u.token), 0.0f);
      t.addProbabilities(k, kv * group_, group_, r.max, r.sum, row + u.begin);
    }
  }

  // After every unit: split tokens' probabilities, then the shared accumulators' sums.
  void finish(const KernelSet& k, const std::vector<AttentionUnit>& units, const std::vector<PartialAttention>& partials) {
    // Per split voting unit, its token's merged max and sum of every head (computed at the token's first
    // range: a token's units are consecutive in splitUnits_ too).
    std::vector<float> merged(splitUnits_.size() * 2 * nHeads_);
    for (size_t n = 0; n < splitUnits_.size();) {
      const size_t first = splitUnits_[n], count = units[first].ranges;
      float* m = merged.data() + n * 2 * nHeads_;
      for (size_t h = 0; h < nHeads_; h++) {
        const MergedSoftmax s = mergedSoftmax(partials, first, count, h);
        m[h] = s.max;
        m[nHeads_ + h] = s.sum;
      }
      for (size_t j = 1; j < count; j++) std::copy_n(m, 2 * nHeads_, m + j * 2 * nHeads_);
      n += count;
    }
    pool().parallelFor(splitUnits_.size() * kvHeads_, [&](size_t task) {
      const size_t n = task / kvHeads_, kv = task % kvHeads_;
      const AttentionUnit& u = units[splitUnits_[n]];
      float* row = dst_[u.token] + kv * dstStride_[u.token] + u.begin;
      if (staged_[u.token]) {
        std::fill_n(row, u.end - u.begin, 0.0f);
        // The token's first range also clears the rows before its window, which no unit writes.
        if (u.begin == first_[u.token]) std::fill_n(row - u.begin, u.begin, 0.0f);
      }
      const float* m = merged.data() + n * 2 * nHeads_;
      splitTiles_[splitUnits_[n]].addProbabilities(k, kv * group_, group_, m, m + nHeads_, row);
    });
    pool().parallelFor(shared_.size() * kvHeads_, [&](size_t task) {
      const Shared& s = shared_[task / kvHeads_];
      const size_t kv = task % kvHeads_;
      float* acc = req_.acc + (size_t(s.voter) * kvHeads_ + kv) * req_.stride;
      for (size_t j = s.first; j < s.first + s.count; j++) {
        const size_t t = sharedTokens_[j];
        k.axpy(acc, dst_[t] + kv * dstStride_[t], 1.0f, len(t));
      }
    });
  }

 private:
  struct Shared {
    int32_t voter;
    size_t first;  // into sharedTokens_
    size_t count;
  };

  size_t len(size_t token) const { return size_t(rows_[token]) + 1; }

  // The large per-call buffers, kept by the calling thread from call to call: a fresh allocation of
  // megabytes would be fresh pages, faulted in on every call.
  struct Buffers {
    std::vector<float> staging;       // per token sharing an accumulator: [kvHeads][rows]
    std::vector<float> splitWeights;  // per split voting unit: its ScoreTiles' weights
  };
  static Buffers& buffers() {
    thread_local Buffers b;
    return b;
  }
  static float* grown(std::vector<float>& v, size_t n) {
    if (v.size() < n) v.resize(n);
    return v.data();
  }

  ScoreRequest req_;
  const int32_t* rows_;
  size_t nHeads_, kvHeads_, group_;
  std::vector<float*> dst_;         // per token: its rows' sums, position 0 first; nullptr: not voting
  std::vector<size_t> dstStride_;   // per token: floats between its KV heads' rows
  std::vector<bool> staged_;        // per token: dst_ is its own buffer (cleared by whoever writes it)
  std::vector<size_t> first_;       // per token: the first row it attends (a sliding window's start)
  std::vector<Shared> shared_;
  std::vector<size_t> sharedTokens_;
  std::vector<size_t> splitUnits_;  // voting units of split tokens, in unit order
  std::vector<float> splitMax_;
  std::vector<uint32_t> splitStarts_;
  std::vector<ScoreTiles> splitTiles_;  // per unit (used for splitUnits_)
};

}  // namespace vserve
