// The contiguous KV layout [slot][position][row] as the native entry points read it from JS (see
// src/backend/backend.ts ContiguousKV): the geometry, its argument parser and the per-token range checks,
// shared by kvStore, attention (attention.cc) and shiftKeys (kv_shift_keys.cc).
#pragma once
#include <string>

#include "js_args.h"
#include "kv_store.h"

namespace vserve {

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
inline KVGeometry kvArgs(const Args& args, size_t first) {
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

inline void checkTokens(const Args& args, const ArrayArg<int32_t>& slots, const ArrayArg<int32_t>& positions,
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

}  // namespace vserve
