// Row moves of compact() shared by the TypeScript managers (the native manager does the same in C++).
import type { FlatKeep } from './arguments.js';
import { keepList } from './arguments.js';

/**
 * Moves the kept rows of one (layer, K/V) array to the front: row i gets row keep[i], or with per-head
 * lists head h's slice of row i gets head h's slice of row keep[i]. Index order is safe because
 * keep[i] >= i: every source is at or past the rows written so far.
 */
export function moveKeptRows(a: Uint8Array, rowOffset: (position: number) => number, keep: FlatKeep, layer: number,
  kvHeads: number, rowBytes: number, sliceBytes: number): void {
  const heads = keep.per === 'head' ? kvHeads : 1;
  const bytes = keep.per === 'head' ? sliceBytes : rowBytes;
  for (let h = 0; h < heads; h++) {
    const list = keepList(keep, layer, h, kvHeads);
    const at = h * bytes;
    for (let i = 0; i < list.length; i++) {
      const from = list[i]!;
      if (from === i) continue;
      const src = rowOffset(from) + at;
      a.copyWithin(rowOffset(i) + at, src, src + bytes);
    }
  }
}

/** Marks the rows i < kept that some list writes into (keep[i] !== i): the pages that must be private. */
export function writtenRows(keep: FlatKeep): Uint8Array {
  const written = new Uint8Array(keep.kept);
  for (let start = 0; start < keep.flat.length; start += keep.kept) {
    for (let i = 0; i < keep.kept; i++) if (keep.flat[start + i] !== i) written[i] = 1;
  }
  return written;
}
