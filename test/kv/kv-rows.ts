// Test helpers: read and write one token's K/V row through any manager's view. The marks are written as
// raw f32 bit patterns at the row's first and last 4 bytes, whatever the cache's format: the managers move
// rows as bytes, which is what these helpers check.
import { kvRowOffset } from '../../src/backend/kv-rows.js';
import type { KVCacheManager } from '../../src/kv/index.js';

/** The byte array of (layer, K or V) and the byte offset of (slot, position)'s row in it. */
export function rowBytesAt(kv: KVCacheManager, slot: number, layer: number, position: number, v: boolean): [Uint8Array, number] {
  const view = kv.view();
  const bytes = v ? view.values(layer) : view.keys(layer);
  if (view.layout === 'paged') {
    // Not kvRowOffset: tests also read rows past seqLens, as long as the block is there.
    const block = view.blockTables[slot * view.maxBlocksPerSlot + Math.floor(position / view.blockSize)]!;
    if (block < 0) throw new Error(`slot ${slot} has no block for position ${position}`);
    return [bytes, (block * view.blockSize + (position % view.blockSize)) * view.rowBytes];
  }
  return [bytes, kvRowOffset(view, slot, position)];
}

/** A Float32Array over the array and the float index of (slot, layer, position)'s row for K (v = false) or V. */
export function rowAt(kv: KVCacheManager, slot: number, layer: number, position: number, v: boolean): [Float32Array, number] {
  const [bytes, offset] = rowBytesAt(kv, slot, layer, position, v);
  return [new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2), offset >> 2];
}

/** Floats of a row's marks: the last mark sits at the row's last whole float. */
function markSpan(kv: KVCacheManager): number {
  return kv.view().rowBytes >> 2;
}

/** Writes `id` (+ a per-range offset) into the first and last float of the row. */
export function writeToken(kv: KVCacheManager, slot: number, layer: number, position: number, id: number): void {
  const span = markSpan(kv);
  for (const v of [false, true]) {
    const [a, off] = rowAt(kv, slot, layer, position, v);
    a[off] = id + (v ? 0.5 : 0);
    a[off + span - 1] = -(id + (v ? 0.5 : 0));
  }
}

/** The id written at the row, or NaN when its two marks disagree. */
export function readToken(kv: KVCacheManager, slot: number, layer: number, position: number): number {
  const span = markSpan(kv);
  const [k, koff] = rowAt(kv, slot, layer, position, false);
  const [v, voff] = rowAt(kv, slot, layer, position, true);
  const id = k[koff]!;
  const consistent = k[koff + span - 1] === -id && v[voff] === id + 0.5 && v[voff + span - 1] === -(id + 0.5);
  return consistent ? id : NaN;
}
