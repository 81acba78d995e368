// Wrong shiftKeys calls throw specific errors in both backends and leave the cache as it was: slots and
// rows the cache does not back, ranges that cut a group of the per-channel formats, group rows that the
// layout does not keep adjacent, caches with a residual window, rope parameters that do not fit. The
// native entry points check the same when called directly (the backends' TS checks bypassed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArrayKV } from '../../src/backend/array-kv.js';
import type { Backend, KVView, PagedKV, RopeParams } from '../../src/backend/backend.js';
import { KVError } from '../../src/kv/errors.js';
import { LAYERS, makeView, ROW, ropeParams, storeRows, type CacheSpec } from '../backend/key-shift-caches.js';
import { addon, native, reference, Rng } from './helpers.js';

const backends: Backend[] = [reference, native];

/** A cache of the spec with roped rows in every slot it backs. */
function filled(spec: CacheSpec, run?: number): KVView {
  const view = makeView(spec, 128, run), rng = new Rng(3), p = ropeParams('normal');
  for (let slot = 0; slot < view.maxSlots; slot++) {
    const n = view.layout === 'paged' ? view.seqLens[slot]! : 128;
    for (let layer = 0; layer < LAYERS; layer++) {
      storeRows(reference, view, layer, slot, rng.floats(n * ROW), rng.floats(n * ROW), Int32Array.from({ length: n }, (_, j) => j), p);
    }
  }
  return view;
}

/** Expects the call to throw `error` (a class and message pattern) and to change no byte of the cache. */
function refused(view: KVView, call: () => void, error: { name: string; message: RegExp }, what: string): void {
  const before = Array.from({ length: LAYERS }, (_, l) => [view.keys(l).slice(), view.values(l).slice()]);
  assert.throws(call, (e: Error) => e.name === error.name && error.message.test(e.message), what);
  for (let l = 0; l < LAYERS; l++) {
    assert.deepEqual(view.keys(l), before[l]![0], `${what}: K changed`);
    assert.deepEqual(view.values(l), before[l]![1], `${what}: V changed`);
  }
}

const range = (message: RegExp) => ({ name: 'RangeError', message });
const p = ropeParams('normal');

for (const b of backends) {
  test(`${b.name} shiftKeys refuses slots and rows the cache does not back`, () => {
    const flat = filled({ key: 'q8_0', layout: 'contiguous', rotate: true });
    refused(flat, () => b.shiftKeys(flat, 0, 3, 0, 32, 5, p), range(/slot 3 is outside \[0, 3\)/), 'slot');
    refused(flat, () => b.shiftKeys(flat, 0, -1, 0, 32, 5, p), range(/slot -1/), 'negative slot');
    refused(flat, () => b.shiftKeys(flat, 0, 0, 100, 29, 5, p), range(/rows 100\.\.128 are outside the context \[0, 128\)/), 'past the context');
    refused(flat, () => b.shiftKeys(flat, 0, 0, 1.5, 3, 5, p), range(/first 1\.5/), 'fractional row');
    refused(flat, () => b.shiftKeys(flat, 2, 0, 0, 32, 5, p), range(/KV layer 2 is outside/), 'layer');
    const paged = filled({ key: 'f16', layout: 'paged', rotate: false }) as PagedKV;
    // The last slot holds 64 tokens (block-table entries past them are -1).
    refused(paged, () => b.shiftKeys(paged, 1, 2, 40, 25, -9, p), range(/rows 40\.\.64 are outside slot 2's 64 tokens/), 'past the slot');
    paged.seqLens[2] = 128; // a length the block table does not back
    refused(paged, () => b.shiftKeys(paged, 1, 2, 0, 128, -9, p), range(/slot 2's block table entry 2 = -1 is not a block id/), 'missing block');
    paged.seqLens[2] = 64;
  });

  test(`${b.name} shiftKeys takes whole groups of the per-channel formats, kept adjacent`, () => {
    for (const key of ['kivi2c', 'kivi4c'] as const) {
      const view = filled({ key, layout: 'contiguous', rotate: false });
      const whole = /encodes groups of 32 rows: first \(\d+\) and count \(\d+\) must be multiples of 32/;
      refused(view, () => b.shiftKeys(view, 0, 0, 16, 32, 3, p), range(whole), `${key} first`);
      refused(view, () => b.shiftKeys(view, 0, 0, 32, 48, 3, p), range(whole), `${key} count`);
      // Blocks of 16 rows, scattered: a group of 32 straddles two blocks that are not adjacent.
      const split = makeView({ key, layout: 'paged', rotate: false }, 128, 16);
      refused(split, () => b.shiftKeys(split, 0, 0, 0, 64, 3, p), range(/rows of a group are not adjacent/), `${key} in blocks of 16`);
    }
  });

  test(`${b.name} shiftKeys refuses caches with a residual window`, () => {
    for (const kv of [new ArrayKV(LAYERS, 2, 256, 2, 64, { k: 'kivi2c', v: 'kivi2t' }), new ArrayKV(LAYERS, 2, 256, 2, 64, { k: 'f16', v: 'f16' }, 32)]) {
      refused(kv, () => b.shiftKeys(kv, 0, 0, 0, 32, 3, p),
        { name: 'KVError', message: /shifting keys needs a cache without a residual window/ }, `${kv.keyFormat.name} ring`);
      assert.throws(() => b.shiftKeys(kv, 0, 0, 0, 32, 3, p), (e: Error) => e instanceof KVError && e.code === 'ERR_KV_INVALID_ARGUMENT');
    }
  });

  test(`${b.name} shiftKeys refuses rope parameters that do not fit the cache`, () => {
    const view = filled({ key: 'f32', layout: 'contiguous', rotate: false });
    const bad: [Partial<RopeParams>, RegExp][] = [
      [{ nHeads: 4 }, /rope params \(4 heads of 64\) do not match the cache's K rows \(2 heads of 64\)/],
      [{ headDim: 32 }, /do not match the cache's K rows/],
      [{ ropeDim: 66 }, /ropeDim 66 must be even and <= headDim 64/],
      [{ ropeDim: 63 }, /ropeDim 63 must be even/],
      [{ freqFactors: new Float32Array(3).fill(1) }, /3 frequency factors for 32 rotated pairs/],
      [{ freqFactors: new Float32Array(32).fill(-1) }, /frequency factor 0 is -1/],
      [{ freqBase: 0 }, /freqBase 0 must be positive/],
    ];
    for (const [change, message] of bad) refused(view, () => b.shiftKeys(view, 0, 0, 0, 32, 3, { ...p, ...change }), range(message), JSON.stringify(change));
    refused(view, () => b.shiftKeys(view, 0, 0, 0, 32, 0.5, p), range(/delta 0\.5 must be a whole number/), 'fractional delta');
    refused(view, () => b.shiftKeys(view, 0, 0, 0, 32, 2 ** 31, p), range(/within the int32 range/), 'huge delta');
  });

  test(`${b.name} kvStore refuses formats that encode groups of rows without a residual window`, () => {
    const view = makeView({ key: 'kivi4c', layout: 'contiguous', rotate: false });
    const rows = new Float32Array(32 * ROW);
    const at = Int32Array.from({ length: 32 }, (_, j) => j);
    refused(view, () => b.kvStore(view, 0, rows, rows, new Int32Array(32), at), range(/formats that encode groups of rows need a residual window/), 'kvStore');
  });
}

// The native entry points, called with the backend's argument lists but none of its TS checks.
const NO_RING = [new Uint8Array(0), new Uint8Array(0), 0, 1, 0, new Int32Array(0), new Int32Array(0)] as const;
const rope = (over: { ropeDim?: number; freqBase?: number; neox?: number; freqFactors?: Float32Array } = {}) =>
  [over.ropeDim ?? 64, over.freqBase ?? 10000, 0.5, over.neox ?? 0, over.freqFactors ?? new Float32Array(0)] as const;

function contiguous(view: KVView, ring: readonly unknown[] = NO_RING): unknown[] {
  if (view.layout !== 'contiguous') throw new Error('contiguous views only');
  return [view.keys(0), view.values(0), view.maxSlots, view.maxContext, view.kvHeads, view.headDim, view.keyFormat.id, view.valueFormat.id,
    view.rowBytes, view.rotate ? 1 : 0, view.rowsPerPage, view.pageBytes, ...ring];
}

function paged(view: KVView): unknown[] {
  if (view.layout !== 'paged') throw new Error('paged views only');
  return [view.keys(0), view.values(0), view.blockSize, view.kvHeads, view.headDim, view.blockTables, view.seqLens, view.keyFormat.id,
    view.valueFormat.id, view.rowBytes, view.rotate ? 1 : 0, ...NO_RING];
}

test('the native entry points check slots, rows, groups, rings and rotations themselves', () => {
  const shift = addon.shiftKeys as (...args: unknown[]) => void;
  const pagedShift = addon.pagedShiftKeys as (...args: unknown[]) => void;
  const flat = filled({ key: 'f16', layout: 'contiguous', rotate: true });
  refused(flat, () => shift(...contiguous(flat), 3, 0, 32, 5, ...rope()), range(/^shiftKeys: slot 3 is outside \[0, 3\)/), 'slot');
  refused(flat, () => shift(...contiguous(flat), 0, 120, 9, 5, ...rope()), range(/^shiftKeys: rows 120\.\.128 are outside the context/), 'rows');
  refused(flat, () => shift(...contiguous(flat), 0, 0, 32, 5.5, ...rope()), range(/delta \(5\.50*\) must be a whole number/), 'delta');
  refused(flat, () => shift(...contiguous(flat), 0, 0, 32, 5, ...rope({ ropeDim: 66 })), range(/ropeDim \(66\) must be even and at most headDim \(64\)/), 'ropeDim');
  refused(flat, () => shift(...contiguous(flat), 0, 0, 32, 5, ...rope({ freqBase: -1 })), range(/freqBase must be positive/), 'freqBase');
  refused(flat, () => shift(...contiguous(flat), 0, 0, 32, 5, ...rope({ freqFactors: new Float32Array(5) })), range(/freqFactors has 5 elements, needs none or ropeDim \/ 2 = 32/), 'factors');
  refused(flat, () => shift(...contiguous(flat), 0, 0, 32, 5, ...rope({ freqFactors: new Float32Array(32) })), range(/freqFactors\[0\] must be a positive number/), 'zero factor');
  refused(flat, () => shift(...contiguous(flat), 0, 0, 32, 5, ...rope({ neox: 2 })), range(/neox must be an integer in \[0, 1\]/), 'neox');
  // A residual window (R = 0, one group of slack) on an otherwise valid cache.
  const ringRows = 64, ringBytes = flat.maxSlots * ringRows * ROW * 2;
  const ring = [new Uint8Array(ringBytes), new Uint8Array(ringBytes), ringRows, 32, 0, new Int32Array(3), new Int32Array(3)];
  refused(flat, () => shift(...contiguous(flat, ring), 0, 0, 32, 5, ...rope()), range(/shifting keys needs a cache without a residual window/), 'ring');

  const kivi = filled({ key: 'kivi2c', layout: 'contiguous', rotate: false });
  refused(kivi, () => shift(...contiguous(kivi), 0, 16, 32, 5, ...rope()), range(/the K format kivi2c encodes groups of 32 rows/), 'group');

  const blocks = filled({ key: 'q4_0', layout: 'paged', rotate: false }) as PagedKV;
  refused(blocks, () => pagedShift(...paged(blocks), 2, 40, 25, 5, ...rope()), range(/^pagedShiftKeys: rows 40\.\.64 are outside slot 2's 64 tokens/), 'paged rows');
  blocks.seqLens[2] = 128;
  refused(blocks, () => pagedShift(...paged(blocks), 2, 0, 128, 5, ...rope()), range(/slot 2's block table entry 2 = -1 is not a block id in \[0, 15\)/), 'paged block');
  blocks.seqLens[2] = 64;
  const split = makeView({ key: 'kivi4c', layout: 'paged', rotate: false }, 128, 16);
  refused(split, () => pagedShift(...paged(split), 0, 0, 64, 5, ...rope()), range(/rows of a group are not adjacent/), 'split group');
});
