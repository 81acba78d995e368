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
#include "kv_store.h"
#include "js_args.h"
#include "modules.h"

namespace vserve {
namespace {

struct KVGeometry {
  uint8_t* keys;
  uint8_t* values;
  size_t maxSlots;
  size_t maxContext;
  size_t kvHeads;
  size_t headDim;
  RowFormat format;
  size_t rowsPerPage;
  size_t pageBytes;
  Residual residual;
  size_t rowLen() const { return kvHeads * headDim; }
  size_t slotBytes() const { return maxContext / rowsPerPage * pageBytes; }
  size_t offset(size_t slot, size_t pos) const {
    return slot * slotBytes() + pos / rowsPerPage * pageBytes + pos % rowsPerPage * format.rowBytes;
  }
};

// Reads (keys, values, maxSlots, maxContext, kvHeads, headDim, keyFormat, valueFormat, rowBytes, rotate,
// rowsPerPage, pageBytes, <the residualArgs>) starting at argument `first`.
constexpr size_t kKVArgs = 8 + kRowFormatArgs + kResidualArgs;
KVGeometry kvArgs(const Args& args, size_t first) {
  const ArrayArg<uint8_t> keys = args.bytes(first, "keys");
  const ArrayArg<uint8_t> values = args.bytes(first + 1, "values");
  KVGeometry g{keys.data, values.data, args.index(first + 2, "maxSlots"), args.index(first + 3, "maxContext"),
               args.index(first + 4, "kvHeads"), args.index(first + 5, "headDim"), {}, 0, 0, {}};
  if (g.kvHeads == 0 || g.headDim == 0) args.rangeError("kvHeads and headDim must be positive");
  g.format = rowFormatArgs(args, first + 6, checkedMul(args, g.kvHeads, g.headDim, "row"), g.headDim);
  g.rowsPerPage = args.index(first + 6 + kRowFormatArgs, "rowsPerPage");
  g.pageBytes = args.index(first + 7 + kRowFormatArgs, "pageBytes");
  if (g.rowsPerPage == 0 || g.maxContext % g.rowsPerPage != 0) {
    args.rangeError("rowsPerPage (" + std::to_string(g.rowsPerPage) + ") must be positive and divide maxContext (" +
                    std::to_string(g.maxContext) + ")");
  }
  if (checkedMul(args, g.rowsPerPage, g.format.rowBytes, "page rows") > g.pageBytes) {
    args.rangeError(std::to_string(g.rowsPerPage) + " rows of " + std::to_string(g.format.rowBytes) +
                    " bytes do not fit a page of " + std::to_string(g.pageBytes) + " bytes");
  }
  const size_t perSlot = checkedMul(args, g.maxContext / g.rowsPerPage, g.pageBytes, "slot size");
  const size_t total = checkedMul(args, g.maxSlots, perSlot, "cache size");
  args.requireLength(keys, total, "keys");
  args.requireLength(values, total, "values");
  g.residual = residualArgs(args, first + 8 + kRowFormatArgs, g.maxSlots, g.format);
  // A group's rows must not straddle pages (a slot that is one page holds its groups whole).
  if (g.residual.ringRows > 0 && g.rowsPerPage % g.residual.groupTokens != 0 && g.rowsPerPage != g.maxContext) {
    args.rangeError("rowsPerPage (" + std::to_string(g.rowsPerPage) + ") must be a multiple of groupTokens (" +
                    std::to_string(g.residual.groupTokens) + ")");
  }
  return g;
}

void checkTokens(const Args& args, const ArrayArg<int32_t>& slots, const ArrayArg<int32_t>& positions,
                 const KVGeometry& g) {
  if (slots.length != positions.length) {
    args.rangeError("slots has " + std::to_string(slots.length) + " entries but positions has " +
                    std::to_string(positions.length));
  }
  for (size_t i = 0; i < slots.length; i++) {
    if (slots.data[i] < 0 || size_t(slots.data[i]) >= g.maxSlots) {
      args.rangeError("slots[" + std::to_string(i) + "] = " + std::to_string(slots.data[i]) + " is outside [0, " +
                      std::to_string(g.maxSlots) + ")");
    }
    if (positions.data[i] < 0 || size_t(positions.data[i]) >= g.maxContext) {
      args.rangeError("positions[" + std::to_string(i) + "] = " + std::to_string(positions.data[i]) +
                      " is outside [0, " + std::to_string(g.maxContext) + ")");
    }
  }
}

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
