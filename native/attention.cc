// KV-cache writes and causal attention for a token-packed batch over the contiguous KV layout
// [slot][position][kvHead][headDim] (one f32 array per layer for K and for V).
//
// attention: one task per (token, KV head); the task handles all query heads of that KV head's GQA
// group so each cached K/V row is read once per token. Scores are computed a block of positions at a
// time and folded into a running (max, sum, accumulator) - online softmax - so memory stays O(headDim).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "js_args.h"
#include "modules.h"
#include "thread_pool.h"

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
  const ArrayArg<float> k = args.float32(6, "k");
  const ArrayArg<float> v = args.float32(7, "v");
  const ArrayArg<int32_t> slots = args.int32(8, "slots");
  const ArrayArg<int32_t> positions = args.int32(9, "positions");
  checkTokens(args, slots, positions, g);
  const size_t n = slots.length;
  args.requireLength(k, checkedMul(args, n, g.rowLen(), "k size"), "k");
  args.requireLength(v, checkedMul(args, n, g.rowLen(), "v size"), "v");
  for (size_t i = 0; i < n; i++) {
    const size_t at = g.offset(size_t(slots.data[i]), size_t(positions.data[i]));
    std::copy_n(k.data + i * g.rowLen(), g.rowLen(), g.keys + at);
    std::copy_n(v.data + i * g.rowLen(), g.rowLen(), g.values + at);
  }
  return info.Env().Undefined();
}

constexpr size_t kPositionBlock = 64;

struct HeadState {
  float max = -INFINITY;
  float sum = 0.0f;
};

// Attention of one token's query heads [h0, h0 + group) against KV head `kvHead` of its slot.
void attendGroup(const KernelSet& k, const KVGeometry& g, const float* q, float* out, size_t slot, size_t lastPos,
                 size_t kvHead, size_t group, float scale, std::vector<float>& scores) {
  const size_t d = g.headDim;
  scores.resize(group * kPositionBlock);
  std::vector<HeadState> state(group);
  for (size_t h = 0; h < group; h++) std::fill_n(out + h * d, d, 0.0f);
  const size_t base = g.offset(slot, 0) + kvHead * d;
  for (size_t p0 = 0; p0 <= lastPos; p0 += kPositionBlock) {
    const size_t count = std::min(kPositionBlock, lastPos + 1 - p0);
    for (size_t h = 0; h < group; h++) {
      float* s = &scores[h * kPositionBlock];
      float blockMax = -INFINITY;
      for (size_t p = 0; p < count; p++) {
        s[p] = k.dot(q + h * d, g.keys + base + (p0 + p) * g.rowLen(), d) * scale;
        blockMax = std::max(blockMax, s[p]);
      }
      HeadState& st = state[h];
      const float newMax = std::max(st.max, blockMax);
      if (newMax > st.max && st.sum > 0.0f) {
        const float correction = std::exp(st.max - newMax);
        st.sum *= correction;
        k.scale(out + h * d, correction, d);
      }
      st.max = newMax;
      for (size_t p = 0; p < count; p++) {
        const float w = std::exp(s[p] - newMax);
        st.sum += w;
        k.axpy(out + h * d, g.values + base + (p0 + p) * g.rowLen(), w, d);
      }
    }
  }
  for (size_t h = 0; h < group; h++) k.scale(out + h * d, 1.0f / state[h].sum, d);
}

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
  if (nHeads == 0 || nHeads % g.kvHeads != 0) {
    args.rangeError("nHeads (" + std::to_string(nHeads) + ") must be a positive multiple of kvHeads (" +
                    std::to_string(g.kvHeads) + ")");
  }
  const size_t n = slots.length;
  const size_t qLen = checkedMul(args, n, checkedMul(args, nHeads, g.headDim, "q row"), "q size");
  args.requireLength(q, qLen, "q");
  args.requireLength(out, qLen, "out");
  args.requireDisjoint(out, qLen, q, qLen, "out and q");
  const size_t group = nHeads / g.kvHeads;
  const KernelSet& k = kernels();
  pool().parallelFor(n * g.kvHeads, [&](size_t task) {
    thread_local std::vector<float> scores;
    const size_t t = task / g.kvHeads, kvHead = task % g.kvHeads;
    const size_t at = (t * nHeads + kvHead * group) * g.headDim;
    attendGroup(k, g, q.data + at, out.data + at, size_t(slots.data[t]), size_t(positions.data[t]), kvHead, group,
                scale, scores);
  });
  return info.Env().Undefined();
}

}  // namespace

void InitAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("kvStore", Napi::Function::New(env, KVStore, "kvStore"));
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
}

}  // namespace vserve
