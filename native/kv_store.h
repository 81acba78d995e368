// What the contiguous and paged KV layouts share: the formats and row stride read from the JS arguments,
// and kvStore, which encodes each token's K and V row into where the layout's geometry puts
// (slot, position).
#pragma once
#include <string>

#include "attention_core.h"
#include "js_args.h"
#include "kv_format.h"

namespace vserve {

struct RowFormat {
  KVFormats ids;
  size_t rowBytes;  // stride between rows, at least either format's row
};

// Reads (keyFormat, valueFormat, rowBytes) starting at argument `first`, for rows of rowLen values.
inline RowFormat rowFormatArgs(const Args& args, size_t first, size_t rowLen) {
  const uint32_t key = uint32_t(args.index(first, "keyFormat", kKVFormatCount - 1));
  const uint32_t value = uint32_t(args.index(first + 1, "valueFormat", kKVFormatCount - 1));
  const size_t rowBytes = args.index(first + 2, "rowBytes");
  for (uint32_t id : {key, value}) {
    const KVFormatTraits& f = kvFormat(id);
    if (rowLen % f.blockValues != 0) {
      args.rangeError(std::string("a row of ") + std::to_string(rowLen) + " values is not whole " + f.name + " blocks of " +
                      std::to_string(f.blockValues));
    }
    if (f.rowBytes(rowLen) > rowBytes) {
      args.rangeError("rowBytes " + std::to_string(rowBytes) + " is smaller than a " + f.name + " row of " +
                      std::to_string(rowLen) + " values (" + std::to_string(f.rowBytes(rowLen)) + " bytes)");
    }
  }
  return {{key, value}, rowBytes};
}

// Geometry: uint8_t* keys, values; RowFormat format; size_t rowLen(); size_t offset(slot, pos) in bytes.
// check(slots, positions) validates every token against the layout before anything is written.
template <class Geometry, class Check>
void storeRows(const Args& args, const Geometry& g, size_t first, Check&& check) {
  const ArrayArg<float> k = args.float32(first, "k");
  const ArrayArg<float> v = args.float32(first + 1, "v");
  const ArrayArg<int32_t> slots = args.int32(first + 2, "slots");
  const ArrayArg<int32_t> positions = args.int32(first + 3, "positions");
  check(slots, positions);
  const size_t n = slots.length, rowLen = g.rowLen();
  args.requireLength(k, checkedMul(args, n, rowLen, "k size"), "k");
  args.requireLength(v, checkedMul(args, n, rowLen, "v size"), "v");
  const KVFormatTraits& kf = kvFormat(g.format.ids.key);
  const KVFormatTraits& vf = kvFormat(g.format.ids.value);
  for (size_t i = 0; i < n; i++) {
    const size_t at = g.offset(size_t(slots.data[i]), size_t(positions.data[i]));
    kf.encode(k.data + i * rowLen, rowLen, g.keys + at);
    vf.encode(v.data + i * rowLen, rowLen, g.values + at);
  }
}

}  // namespace vserve
