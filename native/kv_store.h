// What the contiguous and paged KV layouts share: the formats, row stride and residual window read from
// the JS arguments, and kvStore, which encodes each token's K and V row into where the layout's geometry
// puts (slot, position) - or, with a residual window (KIVI), writes it to the slot's f16 ring and encodes
// the ring's oldest group once the ring is full (src/backend/backend.ts ResidualWindow).
#pragma once
#include <string>
#include <vector>

#include "attention_core.h"
#include "hadamard.h"
#include "js_args.h"
#include "kv_format.h"

namespace vserve {

struct RowFormat {
  KVFormats ids;
  size_t rowBytes;  // stride between rows, at least either format's row
  size_t rotateBlock = 0;  // K and V stored Walsh-Hadamard rotated in blocks of this many values (0: not)
};

// Reads (keyFormat, valueFormat, rowBytes, rotate) starting at argument `first`, for rows of rowLen values
// (heads of headDim).
constexpr size_t kRowFormatArgs = 4;
inline RowFormat rowFormatArgs(const Args& args, size_t first, size_t rowLen, size_t headDim) {
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
  const bool rotate = args.index(first + 3, "rotate", 1) != 0;
  return {{key, value, rowLen, rowBytes}, rowBytes, rotate ? hadamardBlock(headDim) : 0};
}

// Rows of a batch as the cache stores them: rotated copies when the cache is rotated, else the rows.
inline const float* storedRows(const float* x, size_t n, const RowFormat& f, std::vector<float>& copy) {
  if (f.rotateBlock == 0) return x;
  copy.assign(x, x + n);
  hadamardInPlace(copy.data(), n, f.rotateBlock);
  return copy.data();
}

// The residual window (src/backend/backend.ts ResidualWindow): per slot an f16 ring of ringRows = R + G + C
// rows for K and for V (C: the most rows of a slot one kvStore adds), how many of the slot's first tokens are encoded in the cache's formats, and the
// floor of that count. ringRows == 0: none (every row is encoded at once).
struct Residual {
  uint8_t* keys = nullptr;
  uint8_t* values = nullptr;
  size_t ringRows = 0;
  size_t groupTokens = 1;
  size_t tokens = 0;  // R
  int32_t* encoded = nullptr;
  const int32_t* base = nullptr;
  size_t ringRowBytes = 0;  // rowLen f16 values
  size_t windowRows() const { return tokens + groupTokens; }
  size_t chunkTokens() const { return ringRows - windowRows(); }
  const uint8_t* ringRow(const uint8_t* ring, size_t slot, size_t pos) const {
    return ring + (slot * ringRows + pos % ringRows) * ringRowBytes;
  }
};

constexpr size_t kResidualArgs = 7;

// Reads (ringKeys, ringValues, ringRows, groupTokens, residualTokens, encoded, base) starting at `first`.
inline Residual residualArgs(const Args& args, size_t first, size_t maxSlots, const RowFormat& format) {
  Residual r;
  const ArrayArg<uint8_t> keys = args.bytes(first, "ringKeys");
  const ArrayArg<uint8_t> values = args.bytes(first + 1, "ringValues");
  r.ringRows = args.index(first + 2, "ringRows");
  r.groupTokens = args.index(first + 3, "groupTokens");
  r.tokens = args.index(first + 4, "residualTokens");
  const ArrayArg<int32_t> encoded = args.int32(first + 5, "encoded");
  const ArrayArg<int32_t> base = args.int32(first + 6, "base");
  const size_t formatGroup = std::max(kvFormat(format.ids.key).groupTokens, kvFormat(format.ids.value).groupTokens);
  if (r.ringRows == 0) return r;
  if (r.groupTokens == 0 || r.groupTokens % formatGroup != 0 || r.tokens % r.groupTokens != 0 ||
      r.ringRows <= r.tokens + r.groupTokens) {
    args.rangeError("ringRows (" + std::to_string(r.ringRows) + ") must exceed residualTokens (" + std::to_string(r.tokens) +
                    ") + groupTokens (" + std::to_string(r.groupTokens) + "), both multiples of the formats' group (" +
                    std::to_string(formatGroup) + ")");
  }
  r.ringRowBytes = format.ids.rowValues * 2;
  const size_t ringBytes = checkedMul(args, checkedMul(args, maxSlots, r.ringRows, "ring rows"), r.ringRowBytes, "ring size");
  args.requireLength(keys, ringBytes, "ringKeys");
  args.requireLength(values, ringBytes, "ringValues");
  args.requireLength(encoded, maxSlots, "encoded");
  args.requireLength(base, maxSlots, "base");
  r.keys = keys.data;
  r.values = values.data;
  r.encoded = encoded.data;
  r.base = base.data;
  return r;
}

// The f16 ring's rows as a layout for attendRows.
struct RingRows {
  const Residual& ring;
  size_t slot;
  void fill(size_t p0, size_t count, TileRows& rows) const {
    for (size_t p = 0; p < count; p++) {
      rows.keys[p] = ring.ringRow(ring.keys, slot, p0 + p);
      rows.values[p] = ring.ringRow(ring.values, slot, p0 + p);
    }
  }
};

// Geometry: uint8_t* keys, values; RowFormat format; Residual residual; size_t maxSlots; size_t rowLen();
// size_t offset(slot, pos) in bytes. check(slots, positions) validates every token against the layout
// before anything is written; positions must also fall in their slot's residual window as it moves.
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
  const Residual& ring = g.residual;
  std::vector<float> kCopy, vCopy;
  const float* kRows = storedRows(k.data, n * rowLen, g.format, kCopy);
  const float* vRows = storedRows(v.data, n * rowLen, g.format, vCopy);
  if (ring.ringRows == 0) {
    // Rows arrive one at a time; a format that encodes groups of rows can only take them through a ring.
    if (kf.groupTokens > 1 || vf.groupTokens > 1) {
      args.rangeError("formats that encode groups of rows need a residual window (ringRows > 0) to store rows");
    }
    for (size_t i = 0; i < n; i++) {
      const size_t at = g.offset(size_t(slots.data[i]), size_t(positions.data[i]));
      kf.encode(kRows + i * rowLen, rowLen, g.keys + at, g.format.rowBytes);
      vf.encode(vRows + i * rowLen, rowLen, g.values + at, g.format.rowBytes);
    }
    return;
  }
  // Every position must land in its slot's window as the window moves through the batch, and a slot may
  // add at most C rows (the ring's slack, which keeps the rows a chunk's first token reads in f16).
  std::vector<int32_t> encoded(ring.encoded, ring.encoded + g.maxSlots);
  std::vector<uint32_t> added(g.maxSlots, 0);
  const size_t window = ring.windowRows();
  for (size_t i = 0; i < n; i++) {
    const size_t slot = size_t(slots.data[i]), pos = size_t(positions.data[i]), e = size_t(encoded[slot]);
    if (++added[slot] > ring.chunkTokens()) {
      args.rangeError("a cache with a residual window takes at most " + std::to_string(ring.chunkTokens()) +
                      " tokens of a slot per kvStore; slot " + std::to_string(slot) + " has more");
    }
    if (pos < e || pos >= e + window) {
      args.rangeError("positions[" + std::to_string(i) + "] = " + std::to_string(pos) + " is outside slot " +
                      std::to_string(slot) + "'s residual window " + std::to_string(e) + ".." +
                      std::to_string(e + window - 1));
    }
    if (pos + 1 - e == window) encoded[slot] = int32_t(e + ring.groupTokens);
  }
  const KVFormatTraits& f16 = kvFormat(kKVF16);
  std::vector<float> group;
  auto encodeGroup = [&](const KVFormatTraits& f, const uint8_t* ringBase, uint8_t* cache, size_t slot, size_t e) {
    group.resize(ring.groupTokens * rowLen);
    for (size_t j = 0; j < ring.groupTokens; j++) {
      f16.decode(ring.ringRow(ringBase, slot, e + j), 0, rowLen, group.data() + j * rowLen, rowLen, 0, 0);
    }
    for (size_t j = 0; j < ring.groupTokens; j += f.groupTokens) {
      uint8_t* dst = cache + g.offset(slot, e + j);
      // The format's group must be adjacent rows (pages and blocks hold whole groups).
      if (f.groupTokens > 1 && g.offset(slot, e + j + f.groupTokens - 1) != g.offset(slot, e + j) + (f.groupTokens - 1) * g.format.rowBytes) {
        args.rangeError("the rows of a group are not adjacent in this cache layout");
      }
      f.encode(group.data() + j * rowLen, rowLen, dst, g.format.rowBytes);
    }
  };
  for (size_t i = 0; i < n; i++) {
    const size_t slot = size_t(slots.data[i]), pos = size_t(positions.data[i]), e = size_t(ring.encoded[slot]);
    uint8_t* kr = const_cast<uint8_t*>(ring.ringRow(ring.keys, slot, pos));
    uint8_t* vr = const_cast<uint8_t*>(ring.ringRow(ring.values, slot, pos));
    f16.encode(kRows + i * rowLen, rowLen, kr, 0);
    f16.encode(vRows + i * rowLen, rowLen, vr, 0);
    if (pos + 1 - e == window) {
      encodeGroup(kf, ring.keys, g.keys, slot, e);
      encodeGroup(vf, ring.values, g.values, slot, e);
      ring.encoded[slot] = int32_t(e + ring.groupTokens);
    }
  }
}

// E(pos + 1): a token at `pos` reads positions below it from the cache, the rest from the ring (no ring:
// all from the cache). The same whether the token was computed alone or in a chunk.
inline size_t residualSplit(const Residual& ring, size_t slot, size_t pos) {
  if (ring.ringRows == 0) return SIZE_MAX;
  const int64_t g = int64_t(ring.groupTokens), past = int64_t(pos) + 1 - int64_t(ring.tokens);
  const int64_t floorGroups = past >= 0 ? past / g * g : -((-past + g - 1) / g) * g;
  return size_t(std::min<int64_t>(ring.encoded[slot], std::max<int64_t>(ring.base[slot], floorGroups)));
}

}  // namespace vserve
