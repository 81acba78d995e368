// A run of a slot's tokens as plain bytes, and back: what a tier stores for a cached block. The bytes are
// every layer's K rows then V rows, exactly as the cache holds them (in its formats, rotated or not), so
// that loading them back gives the attention kernel the same cache it would have computed. Works on either
// layout the attention reads (contiguous: virtual and static managers; paged: block tables).
import type { KVView } from '../backend/backend.js';
import { KVError } from './errors.js';

/** Bytes of `tokens` tokens' rows, all layers, K and V. */
export function runBytes(view: KVView, layers: number, tokens: number): number {
  return layers * 2 * tokens * view.rowBytes;
}

/** Where a run lies: tokens first .. first + tokens - 1 of `slot`, which holds `held` tokens (the manager knows). */
export interface RowRun {
  slot: number;
  first: number;
  tokens: number;
  held: number;
}

/** Copies a run of rows out of the cache. */
export function readRows(view: KVView, layers: number, run: RowRun): Uint8Array {
  const { tokens } = run;
  const out = new Uint8Array(runBytes(view, layers, tokens));
  forEachPiece(view, layers, run, (at, cache, offset, bytes) => out.set(cache.subarray(offset, offset + bytes), at));
  return out;
}

/** Writes `bytes` (as readRows returns them) into a run of rows the slot already holds. */
export function writeRows(view: KVView, layers: number, run: RowRun, bytes: Uint8Array): void {
  const { tokens } = run;
  if (bytes.length !== runBytes(view, layers, tokens)) {
    throw new KVError('ERR_KV_INVALID_ARGUMENT', `writeRows: ${bytes.length} bytes given for ${tokens} tokens of ${layers} layers (${runBytes(view, layers, tokens)} expected)`);
  }
  forEachPiece(view, layers, run, (at, cache, offset, length) => cache.set(bytes.subarray(at, at + length), offset));
}

/**
 * Calls `copy` for every contiguous piece of the run in the cache: `at` is the piece's offset in the byte
 * string, `cache` the layer's K or V array and `offset` the piece's offset there.
 */
function forEachPiece(
  view: KVView,
  layers: number,
  run: RowRun,
  copy: (at: number, cache: Uint8Array, offset: number, bytes: number) => void,
): void {
  checkRun(view, run);
  const { slot, first, tokens } = run;
  const row = view.rowBytes;
  const partBytes = tokens * row;
  // Both layouts keep rows in pages (a contiguous slot's pages follow each other; a paged slot's blocks
  // are wherever its table says): a run splits at page boundaries.
  const pageRows = view.layout === 'contiguous' ? view.rowsPerPage : view.blockSize;
  const pageStart = (page: number): number =>
    view.layout === 'contiguous'
      ? (slot * (view.maxContext / view.rowsPerPage) + page) * view.pageBytes
      : view.blockTables[slot * view.maxBlocksPerSlot + page]! * view.blockSize * row;
  for (let layer = 0; layer < layers; layer++) {
    for (const [index, cache] of [view.keys(layer), view.values(layer)].entries()) {
      const part = (layer * 2 + index) * partBytes;
      for (let p = first; p < first + tokens; ) {
        const inPage = p % pageRows;
        const n = Math.min(pageRows - inPage, first + tokens - p);
        copy(part + (p - first) * row, cache, pageStart(Math.floor(p / pageRows)) + inPage * row, n * row);
        p += n;
      }
    }
  }
}

function checkRun(view: KVView, { slot, first, tokens, held }: RowRun): void {
  const ok = Number.isInteger(slot) && slot >= 0 && slot < view.maxSlots && Number.isInteger(first) && first >= 0 && Number.isInteger(tokens) && tokens >= 0;
  const limit = view.layout === 'contiguous' ? Math.min(held, view.maxContext) : Math.min(held, view.seqLens[slot] ?? 0);
  if (!ok || first + tokens > limit) {
    throw new KVError('ERR_KV_INVALID_ARGUMENT', `rows ${first}..${first + tokens - 1} of slot ${slot} are outside the cache (${limit} tokens backed)`);
  }
  if (view.layout === 'paged') {
    for (let b = Math.floor(first / view.blockSize); b * view.blockSize < first + tokens; b++) {
      if ((view.blockTables[slot * view.maxBlocksPerSlot + b] ?? -1) < 0) throw new KVError('ERR_KV_INVALID_ARGUMENT', `block ${b} of slot ${slot} is not backed`);
    }
  }
}
