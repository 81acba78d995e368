// KV-cache writes and causal attention for a token-packed batch over the contiguous KV layout
// [slot][position][row] (one byte array per layer for K and for V, rows in the cache's formats). Rows are
// grouped in pages of rowsPerPage rows, pageBytes apart, so that no row straddles a page of the
// virtual manager's pool; a slot is maxContext / rowsPerPage pages.
//
// attention: the batch loop and the per-task loop are attention_batch.h and attention_core.h, shared
// with the paged layout (paged_attention.cc).
#include <algorithm>
#include <string>

#include "attention_batch.h"
#include "contiguous_kv.h"
#include "js_args.h"
#include "kv_store.h"
#include "modules.h"

namespace vserve {
namespace {

// kvStore(<the kvArgs>, k, v, slots, positions)
Napi::Value KVStore(const Napi::CallbackInfo& info) {
  Args args(info, "kvStore");
  const KVGeometry g = kvArgs(args, 0);
  storeRows(args, g, kKVArgs, [&](const auto& slots, const auto& positions) { checkTokens(args, slots, positions, g); });
  return info.Env().Undefined();
}

// The contiguous layout's rows: position p of a slot is row p % rowsPerPage of the slot's page p / rowsPerPage.
struct ContiguousRows {
  const uint8_t* keys;  // this slot's first page
  const uint8_t* values;
  const KVGeometry& g;
  void fill(size_t p0, size_t count, TileRows& rows) const {
    for (size_t p = 0; p < count;) {
      const size_t pos = p0 + p, inPage = pos % g.rowsPerPage;
      const size_t run = std::min(count - p, g.rowsPerPage - inPage);
      const size_t first = pos / g.rowsPerPage * g.pageBytes + inPage * g.format.rowBytes;
      for (size_t r = 0; r < run; r++, p++) {
        rows.keys[p] = keys + first + r * g.format.rowBytes;
        rows.values[p] = values + first + r * g.format.rowBytes;
      }
    }
  }
};

// attention(out, q, <the kvArgs>, slots, positions, nHeads, scale, window, softcap[, voters, acc, stride])
// (the optional scores output: attention_scores.h)
Napi::Value Attention(const Napi::CallbackInfo& info) {
  Args args(info, "attention");
  const ArrayArg<float> out = args.float32(0, "out");
  const ArrayArg<float> q = args.float32(1, "q");
  const KVGeometry g = kvArgs(args, 2);
  const ArrayArg<int32_t> slots = args.int32(2 + kKVArgs, "slots");
  const ArrayArg<int32_t> positions = args.int32(3 + kKVArgs, "positions");
  const size_t nHeads = args.index(4 + kKVArgs, "nHeads");
  const float scale = float(args.number(5 + kKVArgs, "scale"));
  size_t window = 0;
  float softcap = 0.0f;
  attentionOptionArgs(args, 6 + kKVArgs, window, softcap);
  checkTokens(args, slots, positions, g);
  ScoreRequest request{};
  const bool scores = scoreArgs(args, 6 + kAttentionOptionArgs + kKVArgs, positions, g.kvHeads, out, q, request);
  runAttention(args, {out, q, positions.data, slots.length, nHeads, g.kvHeads, g.headDim, scale, window, softcap, g.format.ids, &g.residual,
                       slots.data, g.format.rotateBlock, scores ? &request : nullptr},
               [&](size_t t) {
                 const size_t base = g.offset(size_t(slots.data[t]), 0);
                 return ContiguousRows{g.keys + base, g.values + base, g};
               });
  return info.Env().Undefined();
}

}  // namespace

void InitAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("kvStore", Napi::Function::New(env, KVStore, "kvStore"));
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
}

}  // namespace vserve
