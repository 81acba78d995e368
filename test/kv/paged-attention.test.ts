// The paged attention kernel against the contiguous one: the same K/V laid out both ways (an ArrayKV and
// a PagedKVManager whose slots grew interleaved, so block ids are scattered), a mixed token-packed batch
// (a prefill chunk continuing earlier tokens + decodes of other slots, GQA), block sizes 16/64/256.
// Native paged == native contiguous exactly on every ISA (they share the loop, attention_core.h), and the
// reference paths agree exactly too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArrayKV } from '../../src/backend/array-kv.js';
import type { AttentionShape, Backend, KVView } from '../../src/backend/backend.js';
import { PagedKVManager } from '../../src/kv/paged-kv.js';
import { forEachIsa, native, reference, relativeError, Rng } from '../native/helpers.js';

const MAX_SLOTS = 4, MAX_CONTEXT = 600, LAYERS = 2, LAYER = 1;
const SHAPE = { nHeads: 8, nKVHeads: 2, headDim: 64 };
const S: AttentionShape = { ...SHAPE, scale: 1 / Math.sqrt(SHAPE.headDim) };
const WIDTH = SHAPE.nKVHeads * SHAPE.headDim;
// Slot 0: a 70-token prefill chunk after 300 earlier tokens. Slots 1-3: decodes at positions 0, 520, 9.
const HISTORY = [300, 0, 520, 9];

function pagedManager(blockSize: number): PagedKVManager {
  const shape = { layers: LAYERS, kvHeads: SHAPE.nKVHeads, headDim: SHAPE.headDim, maxSlots: MAX_SLOTS, maxContext: MAX_CONTEXT };
  return new PagedKVManager({ ...shape, blockSize, budgetBytes: MAX_SLOTS * MAX_CONTEXT * WIDTH * 4 * LAYERS * 2 * 2 });
}

/** Grows every slot in rounds of one block so that the slots' blocks interleave in the pool. */
function growInterleaved(m: PagedKVManager, targets: number[]): void {
  const lens = new Int32Array(MAX_SLOTS);
  for (let round = 1; targets.some((t, s) => lens[s]! < t); round++) {
    targets.forEach((t, s) => { lens[s] = Math.min(t, round * m.blockSize); });
    assert.ok(m.step(lens).ok);
  }
}

interface Case {
  contiguous: ArrayKV;
  paged: KVView;
  slots: Int32Array;
  positions: Int32Array;
  q: Float32Array;
}

/** Stores the history and the batch's K/V through `store` into both layouts. */
function buildCase(blockSize: number, store: Backend): Case {
  const rng = new Rng(blockSize);
  const manager = pagedManager(blockSize);
  for (let s = 0; s < MAX_SLOTS; s++) manager.allocSlot();
  const batchSlots: number[] = [], batchPositions: number[] = [];
  for (let i = 0; i < 70; i++) { batchSlots.push(0); batchPositions.push(HISTORY[0]! + i); }
  for (const slot of [2, 1, 3]) { batchSlots.push(slot); batchPositions.push(HISTORY[slot]!); }
  const targets = HISTORY.map((h, s) => h + batchSlots.filter((x) => x === s).length);
  growInterleaved(manager, targets);
  const paged = manager.view();
  const contiguous = new ArrayKV(LAYERS, MAX_SLOTS, MAX_CONTEXT, SHAPE.nKVHeads, SHAPE.headDim);
  const storeBoth = (slots: Int32Array, positions: Int32Array) => {
    const k = rng.floats(slots.length * WIDTH), v = rng.floats(slots.length * WIDTH);
    for (const kv of [contiguous, paged]) store.kvStore(kv, LAYER, k, v, slots, positions);
  };
  HISTORY.forEach((len, slot) => {
    if (len > 0) storeBoth(new Int32Array(len).fill(slot), Int32Array.from({ length: len }, (_, i) => i));
  });
  const slots = Int32Array.from(batchSlots), positions = Int32Array.from(batchPositions);
  storeBoth(slots, positions);
  return { contiguous, paged, slots, positions, q: rng.floats(slots.length * SHAPE.nHeads * SHAPE.headDim, 2) };
}

function attend(b: Backend, kv: KVView, c: Case): Float32Array {
  const out = new Float32Array(c.q.length);
  b.attention(out, c.q, kv, LAYER, c.slots, c.positions, S);
  return out;
}

for (const blockSize of [16, 64, 256]) {
  test(`block size ${blockSize}: native paged attention equals native contiguous attention on every ISA`, () => {
    const c = buildCase(blockSize, native);
    const want = attend(reference, c.contiguous, c);
    forEachIsa((isa) => {
      const contiguous = attend(native, c.contiguous, c);
      const paged = attend(native, c.paged, c);
      assert.deepEqual(paged, contiguous, `${isa}: paged and contiguous differ`);
      const err = relativeError(paged, want);
      assert.ok(err <= 1e-5, `${isa}: error ${err} against the reference`);
    });
  });

  test(`block size ${blockSize}: reference paged attention and kvStore equal the reference contiguous path`, () => {
    const c = buildCase(blockSize, reference);
    assert.deepEqual(attend(reference, c.paged, c), attend(reference, c.contiguous, c));
    // Native kvStore writes the same bytes as the reference one, in the paged layout too.
    const n = buildCase(blockSize, native);
    assert.deepEqual(n.paged.keys(LAYER), c.paged.keys(LAYER));
    assert.deepEqual(n.paged.values(LAYER), c.paged.values(LAYER));
  });
}

for (const blockSize of [16, 256]) {
  test(`block size ${blockSize}: a few decodes (positions split into ranges) give the same result paged and contiguous`, () => {
    const c = buildCase(blockSize, native);
    // The batch's decodes only (slots 2, 1, 3 at 520, 0, 9): fewer tokens than twice the threads, so
    // slot 2's 521 positions are attended in ranges and merged.
    const decodes: Case = { ...c, slots: c.slots.slice(70), positions: c.positions.slice(70), q: c.q.slice(70 * SHAPE.nHeads * SHAPE.headDim) };
    const want = attend(reference, c.contiguous, decodes);
    forEachIsa((isa) => {
      const paged = attend(native, c.paged, decodes);
      assert.deepEqual(paged, attend(native, c.contiguous, decodes), `${isa}: paged and contiguous differ`);
      assert.ok(relativeError(paged, want) <= 1e-5, `${isa}: error ${relativeError(paged, want)} against the reference`);
    });
  });
}

test('paged kvStore and attention reject positions past seqLen, bad block ids and bad table sizes', () => {
  for (const b of [native, reference]) {
    const m = pagedManager(16);
    const slot = m.allocSlot()!;
    assert.ok(m.step(Int32Array.of(20, 0, 0, 0)).ok);
    const view = m.view();
    const k = new Float32Array(WIDTH), q = new Float32Array(SHAPE.nHeads * SHAPE.headDim), out = new Float32Array(q.length);
    const one = (pos: number, kv: KVView = view) => {
      b.kvStore(kv, LAYER, k, k, Int32Array.of(slot), Int32Array.of(pos));
      b.attention(out, q, kv, LAYER, Int32Array.of(slot), Int32Array.of(pos), S);
    };
    one(19);
    assert.throws(() => one(20), /outside slot 0's 20 tokens/, b.name);
    assert.throws(() => b.kvStore(view, LAYER, k, k, Int32Array.of(MAX_SLOTS), Int32Array.of(0)), /slot/, b.name);
    const badTable = Int32Array.from(view.blockTables);
    badTable[1] = view.numBlocks;
    assert.throws(() => one(19, { ...view, keys: view.keys, values: view.values, blockTables: badTable }), /not a block id/, b.name);
    if (b === native) {
      const short = view.blockTables.subarray(0, view.blockTables.length - 1);
      assert.throws(() => one(0, { ...view, keys: view.keys, values: view.values, blockTables: short }), /one row per slot/);
    }
  }
});
