// Attention's sliding window and logit soft-cap (AttentionShape.window / softcap) against the reference,
// on every ISA, contiguous and paged, in every kind of KV format: a mixed batch (a prefill chunk that
// crosses its window's edge and decodes at several lengths), a small batch whose tokens are split into
// ranges, and a single long decode; windows of 1 row, shorter and longer than a tile, and longer than
// every sequence. Both the output and the scores output (for eviction policies) are compared, and the
// paged cache must give the contiguous cache's bits.
//
// Tolerance: max |native - reference| / max |reference|, 1e-5 where the kernels read the stored values
// exactly (f32 online softmax against the reference's f64 two-pass one); q8_0/q4_0 keys read with
// integer dots (the query quantized to 8 bits) move the weights a little more.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArrayKV } from '../../src/backend/array-kv.js';
import type { AttentionScores, AttentionShape, Backend, KVView } from '../../src/backend/backend.js';
import type { KVType } from '../../src/kv/format.js';
import { PagedKVManager } from '../../src/kv/paged-kv.js';
import { addon, forEachIsa, native, reference, relativeError, Rng, slotRounds } from './helpers.js';

const MAX_SLOTS = 4, MAX_CONTEXT = 1040, LAYER = 1;
const STRIDE = 1013;
/** Slot histories before the batches: slot 0's chunk continues at 300; slots 1-3 decode at 1000, 9 and 520. */
const HISTORY = [300, 1000, 9, 520];
const VOTER_OF_SLOT = [0, 2, -1, 3];
const ACCUMULATORS = 4;

interface Batch {
  slots: Int32Array;
  rows: Int32Array;
  voters: Int32Array;
}

function mixedBatch(chunk: number, first: number): Batch {
  const slots: number[] = [], rows: number[] = [];
  for (let i = 0; i < chunk; i++) { slots.push(0); rows.push(first + i); }
  for (const slot of [1, 2, 3]) { slots.push(slot); rows.push(HISTORY[slot]!); }
  return { slots: Int32Array.from(slots), rows: Int32Array.from(rows), voters: Int32Array.from(slots, (s) => VOTER_OF_SLOT[s]!) };
}

// A large batch (never split), a small one (split at 8 threads) and one long decode, continuing slot 0.
const BATCHES: Batch[] = [
  mixedBatch(70, HISTORY[0]!),
  mixedBatch(5, HISTORY[0]! + 70),
  { slots: Int32Array.of(1), rows: Int32Array.of(HISTORY[1]!), voters: Int32Array.of(0) },
];

function withThreads(threads: number, fn: () => void): void {
  addon.setThreads(threads);
  try {
    fn();
  } finally {
    addon.setThreads(0);
  }
}

function pick<T extends Float32Array | Int32Array>(x: T, rows: number[], width: number): T {
  const out = new (x.constructor as new (n: number) => T)(rows.length * width);
  rows.forEach((r, j) => out.set(x.subarray(r * width, (r + 1) * width), j * width));
  return out;
}

function caches(s: AttentionShape, type: KVType, rotate: boolean): KVView[] {
  const contiguous = new ArrayKV(2, MAX_SLOTS, MAX_CONTEXT, s.nKVHeads, s.headDim, type, undefined, rotate);
  const lens = HISTORY.map((h, slot) => Math.max(h, ...BATCHES.flatMap((c) => Array.from(c.rows).filter((_, i) => c.slots[i] === slot).map((r) => r + 1))));
  const blockSize = 32;
  const m = new PagedKVManager({ layers: 2, kvHeads: s.nKVHeads, headDim: s.headDim, maxSlots: MAX_SLOTS, maxContext: MAX_CONTEXT, type, rotate, blockSize, budgetBytes: 1 << 25 });
  for (let i = 0; i < MAX_SLOTS; i++) m.allocSlot();
  const now = new Int32Array(MAX_SLOTS);
  // Grown a block at a time in turn, so each slot's blocks are scattered through the pool.
  for (let round = 1; lens.some((t, i) => now[i]! < t); round++) {
    lens.forEach((t, i) => { now[i] = Math.min(t, round * blockSize); });
    assert.ok(m.step(now).ok);
  }
  return [contiguous, m.view()];
}

function store(kv: KVView, k: Float32Array, v: Float32Array, slots: Int32Array, rows: Int32Array, width: number): void {
  for (const r of slotRounds(slots, kv.residual?.chunkTokens ?? Infinity)) native.kvStore(kv, LAYER, pick(k, r, width), pick(v, r, width), pick(slots, r, 1), pick(rows, r, 1));
}

function attend(b: Backend, kv: KVView, q: Float32Array, c: Batch, rows: number[], s: AttentionShape, acc?: Float32Array): Float32Array {
  const qWidth = s.nHeads * s.headDim;
  const out = new Float32Array(rows.length * qWidth);
  const scores: AttentionScores | undefined = acc ? { voters: pick(c.voters, rows, 1), acc, stride: STRIDE } : undefined;
  b.attention(out, pick(q, rows, qWidth), kv, LAYER, pick(c.slots, rows, 1), pick(c.rows, rows, 1), s, scores);
  return out;
}

/**
 * Stores the histories and each batch into a contiguous and a paged cache (a round at a time where the
 * cache has a residual window, attending each round before the next is stored, as the engine does), and
 * compares every ISA's output and scores on both against the reference's on the contiguous one.
 */
function expectMatch(s: AttentionShape, type: KVType, rotate: boolean, tol: number, seed: number): void {
  const rng = new Rng(seed);
  const width = s.nKVHeads * s.headDim, qWidth = s.nHeads * s.headDim;
  const kvs = caches(s, type, rotate);
  HISTORY.forEach((len, slot) => {
    const k = rng.floats(len * width), v = rng.floats(len * width);
    for (const kv of kvs) store(kv, k, v, new Int32Array(len).fill(slot), Int32Array.from({ length: len }, (_, i) => i), width);
  });
  for (const [n, c] of BATCHES.entries()) {
    const label = `${type.k}/${type.v}${rotate ? ' rotated' : ''}, window ${s.window ?? '-'}, softcap ${s.softcap ?? '-'}, batch ${n}`;
    const start = new Rng(seed + n).floats(ACCUMULATORS * s.nKVHeads * STRIDE, 1e-4);
    const wantAcc = start.slice();
    const wantOut = new Float32Array(c.slots.length * qWidth);
    const got = new Map<string, { out: Float32Array[]; acc: Float32Array[] }>();
    const k = rng.floats(c.slots.length * width), v = rng.floats(c.slots.length * width), q = rng.floats(c.slots.length * qWidth, 2);
    for (const round of slotRounds(c.slots, kvs[0]!.residual?.chunkTokens ?? Infinity)) {
      for (const kv of kvs) native.kvStore(kv, LAYER, pick(k, round, width), pick(v, round, width), pick(c.slots, round, 1), pick(c.rows, round, 1));
      const part = attend(reference, kvs[0]!, q, c, round, s, wantAcc);
      round.forEach((r, j) => wantOut.set(part.subarray(j * qWidth, (j + 1) * qWidth), r * qWidth));
      forEachIsa((isa) => {
        const mine = got.get(isa) ?? { out: kvs.map(() => new Float32Array(c.slots.length * qWidth)), acc: kvs.map(() => start.slice()) };
        got.set(isa, mine);
        kvs.forEach((kv, i) => {
          const out = attend(native, kv, q, c, round, s, mine.acc[i]!);
          round.forEach((r, j) => mine.out[i]!.set(out.subarray(j * qWidth, (j + 1) * qWidth), r * qWidth));
        });
      });
    }
    const wantAdded = wantAcc.map((x, i) => x - start[i]!);
    for (const [isa, { out: [contiguous, paged], acc: [accC, accP] }] of got) {
      const err = relativeError(contiguous!, wantOut);
      assert.ok(err <= tol, `${label}, ${isa}: output error ${err} > ${tol}`);
      const scoreErr = relativeError(accC!.map((x, i) => x - start[i]!), wantAdded);
      assert.ok(scoreErr <= tol, `${label}, ${isa}: scores error ${scoreErr} > ${tol}`);
      assert.deepEqual(paged, contiguous, `${label}, ${isa}: paged output differs from contiguous`);
      assert.deepEqual(accP, accC, `${label}, ${isa}: paged scores differ from contiguous`);
    }
  }
}

const OPTIONS: Pick<AttentionShape, 'window' | 'softcap'>[] = [
  { window: 1 },
  { window: 37 },
  { window: 100 },
  { window: 5000 },
  { softcap: 3 },
  { window: 70, softcap: 2 },
];

for (const shape of [
  { nHeads: 32, nKVHeads: 4, headDim: 64 },
  { nHeads: 6, nKVHeads: 2, headDim: 48 },
  { nHeads: 4, nKVHeads: 1, headDim: 7 },
]) {
  test(`f32: windows and soft-caps match the reference, output and scores (${shape.nHeads}/${shape.nKVHeads} heads of ${shape.headDim}), contiguous and paged, every ISA`, () => {
    for (const o of OPTIONS) withThreads(8, () => expectMatch({ ...shape, scale: 1 / Math.sqrt(shape.headDim), ...o }, { k: 'f32', v: 'f32' }, false, 1e-5, shape.headDim));
  });
}

const TINY: AttentionShape = { nHeads: 8, nKVHeads: 2, headDim: 64, scale: 1 / 8 };
const QUANT_KEYS = 2e-2;

for (const [type, rotate, tol] of [
  [{ k: 'f16', v: 'f16' }, false, 1e-5],
  [{ k: 'q8_0', v: 'q8_0' }, true, QUANT_KEYS],
  [{ k: 'q4_0', v: 'q4_0' }, false, QUANT_KEYS],
  [{ k: 'kivi4c', v: 'kivi4t' }, false, 1e-5],
] as [KVType, boolean, number][]) {
  test(`${type.k}/${type.v}${rotate ? ' rotated' : ''}: windows and soft-caps match the reference, contiguous and paged, every ISA`, () => {
    for (const o of [{ window: 37 }, { window: 100, softcap: 2 }]) withThreads(8, () => expectMatch({ ...TINY, ...o }, type, rotate, tol, 29));
  });
}

test('without window or soft-cap, the output is the same bits as before (options left out or undefined)', () => {
  const [kv] = caches(TINY, { k: 'f32', v: 'f32' }, false);
  const rng = new Rng(5);
  const width = TINY.nKVHeads * TINY.headDim;
  store(kv!, rng.floats(300 * width), rng.floats(300 * width), new Int32Array(300), Int32Array.from({ length: 300 }, (_, i) => i), width);
  const q = rng.floats(TINY.nHeads * TINY.headDim);
  const c: Batch = { slots: Int32Array.of(0), rows: Int32Array.of(299), voters: Int32Array.of(-1) };
  const plain = attend(native, kv!, q, c, [0], TINY);
  assert.deepEqual(attend(native, kv!, q, c, [0], { ...TINY, window: undefined, softcap: undefined }), plain);
  // A window covering every row changes nothing either.
  assert.deepEqual(attend(native, kv!, q, c, [0], { ...TINY, window: 300 }), plain);
});

test('bad windows and soft-caps are RangeErrors, natively and in the reference', () => {
  const [kv] = caches(TINY, { k: 'f32', v: 'f32' }, false);
  const q = new Float32Array(TINY.nHeads * TINY.headDim), out = new Float32Array(q.length);
  for (const bad of [{ window: 0 }, { window: 2.5 }, { window: -3 }, { softcap: 0 }, { softcap: -1 }, { softcap: Infinity }, { softcap: NaN }]) {
    for (const b of [native, reference]) {
      assert.throws(() => b.attention(out, q, kv!, LAYER, Int32Array.of(0), Int32Array.of(0), { ...TINY, ...bad }), RangeError, `${b.name} ${JSON.stringify(bad)}`);
    }
  }
});
