// KV-cache writes and causal attention over vLLM's paged layout: per layer, K and V are each a pool of
// blocks [block][offsetInBlock][row] (rows rowBytes apart, in the cache's formats), and a slot's positions i*blockSize .. (i+1)*blockSize-1
// live in block blockTables[slot * maxBlocksPerSlot + i] (-1 = none). The attention loop, threading
// and SIMD are attention_batch.h's and attention_core.h's, the same as the contiguous layout's; only
// the row lookup differs: one block-table read per run of blockSize positions.
#include <algorithm>
#include <string>

#include "attention_batch.h"
#include "js_args.h"
#include "kv_store.h"
#include "modules.h"
#include "paged_kv.h"

namespace vserve {
namespace {

// pagedKvStore(<the pagedArgs>, k, v, slots, positions)
Napi::Value PagedKVStore(const Napi::CallbackInfo& info) {
  Args args(info, "pagedKvStore");
  const PagedGeometry g = pagedArgs(args, 0);
  storeRows(args, g, kPagedArgs, [&](const auto& slots, const auto& positions) { checkTokens(args, slots, positions, g); });
  return info.Env().Undefined();
}

// The paged layout's rows: within a tile, one block-table lookup per run of positions in one block.
struct PagedRows {
  const PagedGeometry& g;
  const int32_t* table;  // this slot's block table row
  void fill(size_t p0, size_t count, TileRows& rows) const {
    const size_t rowBytes = g.format.rowBytes;
    for (size_t p = 0; p < count;) {
      const size_t pos = p0 + p;
      const size_t inBlock = pos % g.blockSize;
      const size_t run = std::min(count - p, g.blockSize - inBlock);
      const size_t first = (size_t(table[pos / g.blockSize]) * g.blockSize + inBlock) * rowBytes;
      for (size_t r = 0; r < run; r++, p++) {
        rows.keys[p] = g.keys + first + r * rowBytes;
        rows.values[p] = g.values + first + r * rowBytes;
      }
    }
  }
};

// pagedAttention(out, q, <the pagedArgs>, slots, positions, nHeads, scale, window, softcap[, voters, acc, stride])
// (the optional scores output: attention_scores.h)
Napi::Value PagedAttention(const Napi::CallbackInfo& info) {
  Args args(info, "pagedAttention");
  const ArrayArg<float> out = args.float32(0, "out");
  const ArrayArg<float> q = args.float32(1, "q");
  const PagedGeometry g = pagedArgs(args, 2);
  const ArrayArg<int32_t> slots = args.int32(2 + kPagedArgs, "slots");
  const ArrayArg<int32_t> positions = args.int32(3 + kPagedArgs, "positions");
  const size_t nHeads = args.index(4 + kPagedArgs, "nHeads");
  const float scale = float(args.number(5 + kPagedArgs, "scale"));
  size_t window = 0;
  float softcap = 0.0f;
  attentionOptionArgs(args, 6 + kPagedArgs, window, softcap);
  checkTokens(args, slots, positions, g);
  ScoreRequest request{};
  const bool scores = scoreArgs(args, 6 + kAttentionOptionArgs + kPagedArgs, positions, g.kvHeads, out, q, request);
  runAttention(args, {out, q, positions.data, slots.length, nHeads, g.kvHeads, g.headDim, scale, window, softcap, g.format.ids, &g.residual,
                       slots.data, g.format.rotateBlock, scores ? &request : nullptr},
               [&](size_t t) { return PagedRows{g, g.tables + size_t(slots.data[t]) * g.maxBlocksPerSlot}; });
  return info.Env().Undefined();
}

}  // namespace

void InitPagedAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("pagedKvStore", Napi::Function::New(env, PagedKVStore, "pagedKvStore"));
  exports.Set("pagedAttention", Napi::Function::New(env, PagedAttention, "pagedAttention"));
}

}  // namespace vserve
