// vLLM's paged KV layout (per layer a pool of blocks, a block table per slot) as the native entry points
// read it from JS (see src/backend/backend.ts PagedKV): the geometry, its argument parser and the
// per-token range checks, shared by pagedKvStore, pagedAttention (paged_attention.cc) and pagedShiftKeys
// (kv_shift_keys.cc).
#pragma once
#include <algorithm>
#include <string>

#include "js_args.h"
#include "kv_store.h"

namespace vserve {

struct PagedGeometry {
  uint8_t* keys;
  uint8_t* values;
  size_t blockSize;
  size_t kvHeads;
  size_t headDim;
  size_t numBlocks;
  const int32_t* tables;
  size_t maxBlocksPerSlot;
  const int32_t* seqLens;
  size_t maxSlots;
  RowFormat format;
  Residual residual;
  size_t rowLen() const { return kvHeads * headDim; }
  // Byte offset of (slot, pos)'s row; the caller has validated the block (checkTokens).
  size_t offset(size_t slot, size_t pos) const {
    const size_t block = size_t(tables[slot * maxBlocksPerSlot + pos / blockSize]);
    return (block * blockSize + pos % blockSize) * format.rowBytes;
  }
};

// Reads (keys, values, blockSize, kvHeads, headDim, blockTables, seqLens, keyFormat, valueFormat, rowBytes,
// rotate, <the residualArgs>) starting at argument `first`. The pool's block count and the slot count
// follow from the array lengths, which must divide exactly.
constexpr size_t kPagedArgs = 7 + kRowFormatArgs + kResidualArgs;
inline PagedGeometry pagedArgs(const Args& args, size_t first) {
  const ArrayArg<uint8_t> keys = args.bytes(first, "keys");
  const ArrayArg<uint8_t> values = args.bytes(first + 1, "values");
  const size_t blockSize = args.index(first + 2, "blockSize");
  const size_t kvHeads = args.index(first + 3, "kvHeads");
  const size_t headDim = args.index(first + 4, "headDim");
  const ArrayArg<int32_t> tables = args.int32(first + 5, "blockTables");
  const ArrayArg<int32_t> seqLens = args.int32(first + 6, "seqLens");
  if (blockSize == 0 || kvHeads == 0 || headDim == 0) args.rangeError("blockSize, kvHeads and headDim must be positive");
  const RowFormat format = rowFormatArgs(args, first + 7, checkedMul(args, kvHeads, headDim, "row"), headDim);
  const size_t blockBytes = checkedMul(args, blockSize, format.rowBytes, "block size");
  if (keys.length % blockBytes != 0 || keys.length != values.length || keys.length == 0) {
    args.rangeError("keys and values must hold the same whole number (> 0) of blocks of " + std::to_string(blockBytes) +
                    " bytes; keys has " + std::to_string(keys.length) + ", values " + std::to_string(values.length));
  }
  if (seqLens.length == 0 || tables.length == 0 || tables.length % seqLens.length != 0) {
    args.rangeError("blockTables (" + std::to_string(tables.length) + " entries) must be one row per slot of seqLens (" +
                    std::to_string(seqLens.length) + " slots)");
  }
  const Residual residual = residualArgs(args, first + 7 + kRowFormatArgs, seqLens.length, format);
  if (residual.ringRows > 0 && blockSize % residual.groupTokens != 0) {
    args.rangeError("blockSize (" + std::to_string(blockSize) + ") must be a multiple of groupTokens (" +
                    std::to_string(residual.groupTokens) + ")");
  }
  return {keys.data, values.data, blockSize, kvHeads, headDim, keys.length / blockBytes,
          tables.data, tables.length / seqLens.length, seqLens.data, seqLens.length, format, residual};
}

// Every token's slot is in range, its position is within the slot's seqLen (step() made room for it)
// and every block from position 0 to it is a valid block id.
inline void checkTokens(const Args& args, const ArrayArg<int32_t>& slots, const ArrayArg<int32_t>& positions,
                 const PagedGeometry& g) {
  if (slots.length != positions.length) {
    args.rangeError("slots has " + std::to_string(slots.length) + " entries but positions has " +
                    std::to_string(positions.length));
  }
  for (size_t i = 0; i < slots.length; i++) {
    const int32_t slot = slots.data[i], pos = positions.data[i];
    if (slot < 0 || size_t(slot) >= g.maxSlots) {
      args.rangeError("slots[" + std::to_string(i) + "] = " + std::to_string(slot) + " is outside [0, " +
                      std::to_string(g.maxSlots) + ")");
    }
    const int32_t len = g.seqLens[slot];
    if (pos < 0 || pos >= len || size_t(pos) >= g.maxBlocksPerSlot * g.blockSize) {
      args.rangeError("positions[" + std::to_string(i) + "] = " + std::to_string(pos) + " is outside slot " +
                      std::to_string(slot) + "'s " + std::to_string(std::max(len, 0)) +
                      " tokens (grow the slot with step() first)");
    }
    const int32_t* row = g.tables + size_t(slot) * g.maxBlocksPerSlot;
    for (size_t b = 0; b <= size_t(pos) / g.blockSize; b++) {
      if (row[b] < 0 || size_t(row[b]) >= g.numBlocks) {
        args.rangeError("slot " + std::to_string(slot) + "'s block table entry " + std::to_string(b) + " = " +
                        std::to_string(row[b]) + " is not a block id in [0, " + std::to_string(g.numBlocks) + ")");
      }
    }
  }
}

}  // namespace vserve
