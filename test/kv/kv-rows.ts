// Test helpers: read and write one token's K/V row through any manager's view.
import type { KVCacheManager } from '../../src/kv/index.js';

/** The array and float offset of (slot, layer, position) for K (v = false) or V. */
export function rowAt(kv: KVCacheManager, slot: number, layer: number, position: number, v: boolean): [Float32Array, number] {
  const view = kv.view();
  const rowFloats = view.kvHeads * view.headDim;
  const array = v ? view.values(layer) : view.keys(layer);
  if (view.layout === 'contiguous') return [array, (slot * view.maxContext + position) * rowFloats];
  const block = view.blockTables[slot * view.maxBlocksPerSlot + Math.floor(position / view.blockSize)]!;
  if (block < 0) throw new Error(`slot ${slot} has no block for position ${position}`);
  return [array, (block * view.blockSize + (position % view.blockSize)) * rowFloats];
}

/** Writes `id` (+ a per-range offset) into the first and last float of the row. */
export function writeToken(kv: KVCacheManager, slot: number, layer: number, position: number, id: number): void {
  const rowFloats = kv.shape.kvHeads * kv.shape.headDim;
  for (const v of [false, true]) {
    const [a, off] = rowAt(kv, slot, layer, position, v);
    a[off] = id + (v ? 0.5 : 0);
    a[off + rowFloats - 1] = -(id + (v ? 0.5 : 0));
  }
}

/** The id written at the row, or NaN when its two marks disagree. */
export function readToken(kv: KVCacheManager, slot: number, layer: number, position: number): number {
  const rowFloats = kv.shape.kvHeads * kv.shape.headDim;
  const [k, koff] = rowAt(kv, slot, layer, position, false);
  const [v, voff] = rowAt(kv, slot, layer, position, true);
  const id = k[koff]!;
  const consistent = k[koff + rowFloats - 1] === -id && v[voff] === id + 0.5 && v[voff + rowFloats - 1] === -(id + 0.5);
  return consistent ? id : NaN;
}
