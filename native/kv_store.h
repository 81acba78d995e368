// kvStore for any KV layout: reads (k, v, slots, positions) from the JS arguments and copies each
// token's K and V row to where the layout's geometry puts (slot, position).
#pragma once
#include <algorithm>

#include "js_args.h"

namespace vserve {

// Geometry: float* keys, values; size_t rowLen(); size_t offset(slot, pos). check(slots, positions)
// validates every token against the layout before anything is written.
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
  for (size_t i = 0; i < n; i++) {
    const size_t at = g.offset(size_t(slots.data[i]), size_t(positions.data[i]));
    std::copy_n(k.data + i * rowLen, rowLen, g.keys + at);
    std::copy_n(v.data + i * rowLen, rowLen, g.values + at);
  }
}

}  // namespace vserve
