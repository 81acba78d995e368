// Where a (slot, position)'s K/V row lives in either KV layout, range-checked: the reference backend's
// row lookup (the native kernels validate the same conditions in C++).
import type { KVView } from './backend.js';

/** Byte offset of (slot, position)'s row in a layer's K or V array. */
export function kvRowOffset(kv: KVView, slot: number, pos: number): number {
  if (!(Number.isInteger(slot) && slot >= 0 && slot < kv.maxSlots)) throw new RangeError(`KV slot ${slot} is outside 0..${kv.maxSlots - 1}`);
  if (kv.layout === 'contiguous') {
    if (!(Number.isInteger(pos) && pos >= 0 && pos < kv.maxContext)) throw new RangeError(`position ${pos} is outside the context (0..${kv.maxContext - 1})`);
    const slotBytes = (kv.maxContext / kv.rowsPerPage) * kv.pageBytes;
    return slot * slotBytes + Math.floor(pos / kv.rowsPerPage) * kv.pageBytes + (pos % kv.rowsPerPage) * kv.rowBytes;
  }
  const len = kv.seqLens[slot]!;
  if (!(Number.isInteger(pos) && pos >= 0 && pos < len && pos < kv.maxBlocksPerSlot * kv.blockSize)) {
    throw new RangeError(`position ${pos} is outside slot ${slot}'s ${Math.max(len, 0)} tokens (grow the slot with step() first)`);
  }
  const i = Math.floor(pos / kv.blockSize);
  const block = kv.blockTables[slot * kv.maxBlocksPerSlot + i]!;
  if (!(block >= 0 && block < kv.numBlocks)) throw new RangeError(`slot ${slot}'s block table entry ${i} = ${block} is not a block id in 0..${kv.numBlocks - 1}`);
  return (block * kv.blockSize + (pos % kv.blockSize)) * kv.rowBytes;
}
