// Caches for the shiftKeys tests: ring-less views of either layout over fresh byte arrays (contiguous in
// pages of 32 rows with padding between pages; paged in blocks of 32 placed in a shuffled order), and the
// way rows get into them: rope, then kvStore - through a residual ring where the K format encodes groups
// of rows (kvStore takes such formats only so), the ring then left off the view that is shifted.
import type { Backend, ContiguousKV, KVView, PagedKV, RopeParams } from '../../src/backend/backend.js';
import { kvRowOffset } from '../../src/backend/kv-rows.js';
import type { KVFormatName } from '../../src/kv/format.js';
import { ResidualRing } from '../../src/kv/residual-ring.js';
import { resolveShape, tokenBytes } from '../../src/kv/shape.js';

export const LAYERS = 2, KV_HEADS = 2, HEAD_DIM = 64, SLOTS = 3, CONTEXT = 128;
export const ROW = KV_HEADS * HEAD_DIM;
/** Rows per page (contiguous) and per block (paged): whole groups of the per-channel formats. */
const RUN = 32;

export const KEY_FORMATS: readonly KVFormatName[] = ['f32', 'f16', 'q8_0', 'q4_0', 'kivi2c', 'kivi4c', 'kivi2t', 'kivi4t'];

export interface CacheSpec {
  key: KVFormatName;
  layout: 'contiguous' | 'paged';
  rotate: boolean;
}

/**
 * The rotation the tests shift by: 'normal' rotates whole heads, 'neox' 48 of 64 dims; both with frequency
 * factors, linear scaling and an attention factor (which the stored keys carry and a shift must not add).
 */
export function ropeParams(mode: 'normal' | 'neox'): RopeParams {
  const ropeDim = mode === 'normal' ? HEAD_DIM : 48;
  const freqFactors = Float32Array.from({ length: ropeDim / 2 }, (_, i) => 1 + (i % 5) * 0.75);
  return { nHeads: KV_HEADS, headDim: HEAD_DIM, ropeDim, freqBase: 10000, freqScale: 0.5, freqFactors, attnFactor: 1.25, mode };
}

/** KIVI's pairing for its K formats (per-token V of the same width); f16 V otherwise. */
export function valueFormatFor(key: KVFormatName): KVFormatName {
  return key === 'kivi2c' ? 'kivi2t' : key === 'kivi4c' ? 'kivi4t' : 'f16';
}

export function label(s: CacheSpec): string {
  return `${s.key} K, ${s.layout}${s.rotate ? ', Hadamard-rotated' : ''}`;
}

export function everySpec(): CacheSpec[] {
  return KEY_FORMATS.flatMap((key) => (['contiguous', 'paged'] as const).flatMap((layout) => [false, true].map((rotate) => ({ key, layout, rotate }))));
}

/**
 * A ring-less view for the spec, in pages or blocks of `run` rows. Paged: every slot holds `context` tokens
 * except the last, which holds half (its later block-table entries are -1).
 */
export function makeView(spec: CacheSpec, context = CONTEXT, run = RUN): KVView {
  const shape = resolveShape({ layers: LAYERS, kvHeads: KV_HEADS, headDim: HEAD_DIM, maxSlots: SLOTS, maxContext: context,
    type: { k: spec.key, v: valueFormatFor(spec.key) }, residual: 0, rotate: spec.rotate });
  const rowBytes = tokenBytes(shape);
  const base = { keyFormat: shape.keyFormat, valueFormat: shape.valueFormat, rowBytes, rotate: spec.rotate, maxSlots: SLOTS, kvHeads: KV_HEADS, headDim: HEAD_DIM };
  if (spec.layout === 'contiguous') {
    const pageBytes = run * rowBytes + 96;
    const arrays = Array.from({ length: LAYERS * 2 }, () => new Uint8Array(SLOTS * (context / run) * pageBytes));
    const view: ContiguousKV = { ...base, layout: 'contiguous', maxContext: context, rowsPerPage: run, pageBytes,
      keys: (l) => layerOf(arrays, l, 0), values: (l) => layerOf(arrays, l, 1) };
    return view;
  }
  const perSlot = context / run, numBlocks = SLOTS * perSlot + 3;
  const arrays = Array.from({ length: LAYERS * 2 }, () => new Uint8Array(numBlocks * run * rowBytes));
  // Block b of slot s is pool block (7 * (s * perSlot + b) + 2) mod numBlocks: scattered, never adjacent in order.
  const blockTables = new Int32Array(SLOTS * perSlot).map((_, i) => (7 * i + 2) % numBlocks);
  const seqLens = new Int32Array(SLOTS).fill(context);
  seqLens[SLOTS - 1] = context / 2;
  blockTables.fill(-1, (SLOTS - 1) * perSlot + perSlot / 2);
  const view: PagedKV = { ...base, layout: 'paged', blockSize: run, numBlocks, maxBlocksPerSlot: perSlot, blockTables, seqLens,
    keys: (l) => layerOf(arrays, l, 0), values: (l) => layerOf(arrays, l, 1) };
  return view;
}

/** Layer l's K (side 0) or V (side 1) array; a layer the cache lacks throws, as the managers' views do. */
function layerOf(arrays: Uint8Array[], layer: number, side: 0 | 1): Uint8Array {
  const a = arrays[layer * 2 + side];
  if (!(Number.isInteger(layer) && a)) throw new RangeError(`KV layer ${layer} is outside 0..${LAYERS - 1}`);
  return a;
}

/** A copy of the view over copies of its arrays (same geometry, same bytes). */
export function cloneView(view: KVView): KVView {
  const arrays = Array.from({ length: LAYERS }, (_, l) => [view.keys(l).slice(), view.values(l).slice()] as const);
  return { ...view, keys: (l: number) => arrays[l]![0], values: (l: number) => arrays[l]![1] } as KVView;
}

/**
 * Ropes k (rows of ROW values, copied) at positions `ropeAt` and stores them and v in the slot's rows 0 ..
 * rows - 1 (rows a multiple of 32). A K format that encodes groups goes through a residual ring of no
 * extra rows, 32 rows a call: each full group is encoded into the view's rows.
 */
export function storeRows(b: Backend, view: KVView, layer: number, slot: number, k: Float32Array, v: Float32Array, ropeAt: Int32Array, p: RopeParams): void {
  const rows = ropeAt.length;
  const keys = k.slice(0, rows * ROW);
  b.rope(keys, ropeAt, p);
  const grouped = view.keyFormat.groupTokens > 1 || view.valueFormat.groupTokens > 1;
  const target = grouped ? withRing(view) : view;
  const step = grouped ? RUN : rows;
  for (let r = 0; r < rows; r += step) {
    const slots = new Int32Array(step).fill(slot), at = Int32Array.from({ length: step }, (_, j) => r + j);
    b.kvStore(target, layer, keys.subarray(r * ROW, (r + step) * ROW), v.subarray(r * ROW, (r + step) * ROW), slots, at);
  }
}

function withRing(view: KVView): KVView {
  const context = view.layout === 'contiguous' ? view.maxContext : view.maxBlocksPerSlot * view.blockSize;
  const shape = resolveShape({ layers: LAYERS, kvHeads: KV_HEADS, headDim: HEAD_DIM, maxSlots: SLOTS, maxContext: context,
    type: { k: view.keyFormat.name, v: view.valueFormat.name }, residual: 0, rotate: view.rotate });
  return { ...view, residual: new ResidualRing(shape, 0, RUN) };
}

/** Rows first .. first + count - 1 of a slot's K (or V), decoded as stored (Hadamard-rotated where the cache is). */
export function decodeRows(view: KVView, layer: number, slot: number, first: number, count: number, values = false): Float32Array {
  const format = values ? view.valueFormat : view.keyFormat;
  const bytes = values ? view.values(layer) : view.keys(layer);
  const out = new Float32Array(count * ROW);
  for (let j = 0; j < count; j++) {
    const pos = first + j;
    format.decode(bytes, kvRowOffset(view, slot, pos), 0, ROW, out, j * ROW, ROW, pos % format.groupTokens, view.rowBytes);
  }
  return out;
}

/** Byte ranges [start, end) of a slot's rows first .. first + count - 1 in a layer's array. */
export function rowRanges(view: KVView, slot: number, first: number, count: number): [number, number][] {
  return Array.from({ length: count }, (_, j) => {
    const at = kvRowOffset(view, slot, first + j);
    return [at, at + view.rowBytes] as [number, number];
  });
}

/** The first index where a and b differ outside the given ranges, or -1. */
export function firstDifferenceOutside(a: Uint8Array, b: Uint8Array, ranges: [number, number][]): number {
  const inside = new Uint8Array(a.length);
  for (const [s, e] of ranges) inside.fill(1, s, e);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !inside[i]) return i;
  return -1;
}
