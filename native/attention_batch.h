// A token-packed batch's attention, shared by the contiguous and paged layouts: validates the query
// shape, then runs one task per (token, KV head) on the pool; the task handles all query heads of that
// KV head's GQA group so each cached K/V row is read once per token.
#pragma once
#include <string>

#include "attention_core.h"
#include "cpu_features.h"
#include "js_args.h"
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
};

// rowsFor(token, kvHead) gives the layout's row filler (see attendGroup) for that task.
template <class RowsFor>
void runAttention(const Args& args, const AttentionBatch& b, RowsFor&& rowsFor) {
  if (b.nHeads == 0 || b.nHeads % b.kvHeads != 0) {
    args.rangeError("nHeads (" + std::to_string(b.nHeads) + ") must be a positive multiple of kvHeads (" +
                    std::to_string(b.kvHeads) + ")");
  }
  const size_t qLen = checkedMul(args, b.tokens, checkedMul(args, b.nHeads, b.headDim, "q row"), "q size");
  args.requireLength(b.q, qLen, "q");
  args.requireLength(b.out, qLen, "out");
  args.requireDisjoint(b.out, qLen, b.q, qLen, "out and q");
  const size_t group = b.nHeads / b.kvHeads;
  const KernelSet& k = kernels();
  pool().parallelFor(b.tokens * b.kvHeads, [&](size_t task) {
    thread_local AttentionScratch scratch;
    const size_t t = task / b.kvHeads, kvHead = task % b.kvHeads;
    const size_t at = (t * b.nHeads + kvHead * group) * b.headDim;
    attendGroup(k, rowsFor(t, kvHead), b.q.data + at, b.out.data + at, size_t(b.positions[t]), b.headDim, group,
                b.scale, scratch);
  });
}

}  // namespace vserve
