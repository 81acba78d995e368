// KV-cache writes and causal attention for a token-packed batch over the contiguous KV layout
// [slot][position][kvHead][headDim] (one f32 array per layer for K and for V).
//
// attention: the batch loop and the per-task loop are attention_batch.h and attention_core.h, shared
// with the paged layout (paged_attention.cc).
#include <string>

#include "attention_batch.h"
#include "kv_store.h"
#include "js_args.h"
#include "modules.h"

namespace vserve {
namespace {

struct KVGeometry {
  float* keys;
  float* values;
  size_t maxSlots;
  size_t maxContext;
  size_t kvHeads;
  size_t headDim;
  size_t rowLen() const { return kvHeads * headDim; }
  size_t offset(size_t slot, size_t pos) const { return (slot * maxContext + pos) * rowLen(); }
};

// Reads (keys, values, maxSlots, maxContext, kvHeads, headDim) starting at argument `first`.
KVGeometry kvArgs(const Args& args, size_t first) {
  const ArrayArg<float> keys = args.float32(first, "keys");
  const ArrayArg<float> values = args.float32(first + 1, "values");
  KVGeometry g{keys.data, values.data, args.index(first + 2, "maxSlots"), args.index(first + 3, "maxContext"),
               args.index(first + 4, "kvHeads"), args.index(first + 5, "headDim")};
  if (g.kvHeads == 0 || g.headDim == 0) args.rangeError("kvHeads and headDim must be positive");
  const size_t perSlot = checkedMul(args, g.maxContext, g.rowLen(), "slot size");
  const size_t total = checkedMul(args, g.maxSlots, perSlot, "cache size");
  args.requireLength(keys, total, "keys");
  args.requireLength(values, total, "values");
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

// kvStore(keys, values, maxSlots, maxContext, kvHeads, headDim, k, v, slots, positions)
Napi::Value KVStore(const Napi::CallbackInfo& info) {
  Args args(info, "kvStore");
  const KVGeometry g = kvArgs(args, 0);
  storeRows(args, g, 6, [&](const auto& slots, const auto& positions) { checkTokens(args, slots, positions, g); });
  return info.Env().Undefined();
}

// The contiguous layout's rows: position p of a slot is row p of the slot's range.
struct ContiguousRows {
  const float* keys;  // this slot's position 0
  const float* values;
  size_t rowLen;
  void fill(size_t p0, size_t count, TileRows& rows) const {
    for (size_t p = 0; p < count; p++) {
      rows.keys[p] = keys + (p0 + p) * rowLen;
      rows.values[p] = values + (p0 + p) * rowLen;
    }
  }
};

// attention(out, q, keys, values, maxSlots, maxContext, kvHeads, headDim, slots, positions, nHeads, scale)
Napi::Value Attention(const Napi::CallbackInfo& info) {
  Args args(info, "attention");
  const ArrayArg<float> out = args.float32(0, "out");
  const ArrayArg<float> q = args.float32(1, "q");
  const KVGeometry g = kvArgs(args, 2);
  const ArrayArg<int32_t> slots = args.int32(8, "slots");
  const ArrayArg<int32_t> positions = args.int32(9, "positions");
  const size_t nHeads = args.index(10, "nHeads");
  const float scale = float(args.number(11, "scale"));
  checkTokens(args, slots, positions, g);
  runAttention(args, {out, q, positions.data, slots.length, nHeads, g.kvHeads, g.headDim, scale},
               [&](size_t t) {
                 const size_t base = g.offset(size_t(slots.data[t]), 0);
                 return ContiguousRows{g.keys + base, g.values + base, g.rowLen()};
               });
  return info.Env().Undefined();
}

}  // namespace

void InitAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("kvStore", Napi::Function::New(env, KVStore, "kvStore"));
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
}

}  // namespace vserve
