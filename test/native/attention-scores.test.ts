// Attention's optional scores output (Backend.attention's AttentionScores) against the reference, on every
// ISA, contiguous and paged, in every kind of KV format: a mixed batch where a prefill chunk's tokens vote
// into one accumulator, long decodes vote alone (split into ranges when the batch is small), and one token
// does not vote; GQA groups of several sizes. Both backends read the same stored bytes.
//
// Tolerance: max |native - reference| / max |reference| over the amounts added, 1e-5 where the kernels
// read the stored values exactly; q8_0/q4_0 keys read with integer dots (the query quantized to 8 bits)
// move the softmax weights a little more. Entries no voting token reaches stay bit for bit, and `out` is
// the same bits whether or not scores are asked for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArrayKV } from '../../src/backend/array-kv.js';
import type { AttentionScores, AttentionShape, Backend, KVView } from '../../src/backend/backend.js';
import type { KVType } from '../../src/kv/format.js';
import { PagedKVManager } from '../../src/kv/paged-kv.js';
import { addon, forEachIsa, native, reference, relativeError, Rng, slotRounds } from './helpers.js';

const MAX_SLOTS = 4, MAX_CONTEXT = 1040, LAYER = 1;
/** Longer than any token's rows and not the cache's maxContext. */
const STRIDE = 1013;
/** Slot histories before the batch: slot 0's chunk continues at 300; slots 1-3 decode at 1000, 9 and 520. */
const HISTORY = [300, 1000, 9, 520];
/** Accumulator 1 belongs to no voting token (slot 2 does not vote): it must stay untouched. */
const VOTER_OF_SLOT = [0, 2, -1, 3];
const ACCUMULATORS = 4;

interface Batch {
  slots: Int32Array;
  rows: Int32Array;
  voters: Int32Array;
}

/**
 * A prefill chunk of slot 0's rows first .. first + chunk - 1 (all voting into accumulator 0), then one
 * decode of slots 1-3 (storing their row after the history again, when a batch before stored it).
 */
function mixedBatch(chunk: number, first: number): Batch {
  const slots: number[] = [], rows: number[] = [];
  for (let i = 0; i < chunk; i++) { slots.push(0); rows.push(first + i); }
  for (const slot of [1, 2, 3]) { slots.push(slot); rows.push(HISTORY[slot]!); }
  return { slots: Int32Array.from(slots), rows: Int32Array.from(rows), voters: Int32Array.from(slots, (s) => VOTER_OF_SLOT[s]!) };
}

/** Slot 1's decode alone: one token, split into as many ranges as the pool wants. */
const ONE_DECODE: Batch = { slots: Int32Array.of(1), rows: Int32Array.of(HISTORY[1]!), voters: Int32Array.of(0) };

/** Runs fn with the pool at `threads` threads (a batch of fewer than 2 x threads tokens is split into ranges). */
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

function storeInRounds(kv: KVView, k: Float32Array, v: Float32Array, slots: Int32Array, rows: Int32Array, width: number): void {
  for (const r of slotRounds(slots, kv.residual?.chunkTokens ?? Infinity)) native.kvStore(kv, LAYER, pick(k, r, width), pick(v, r, width), pick(slots, r, 1), pick(rows, r, 1));
}

function contiguousCache(s: AttentionShape, type: KVType, rotate?: boolean): KVView {
  return new ArrayKV(2, MAX_SLOTS, MAX_CONTEXT, s.nKVHeads, s.headDim, type, undefined, rotate);
}

/** A paged cache grown a block at a time in turn, so each slot's blocks are scattered through the pool. */
function pagedCache(s: AttentionShape, type: KVType, rotate: boolean | undefined, lens: number[]): KVView {
  const blockSize = 32;
  const m = new PagedKVManager({ layers: 2, kvHeads: s.nKVHeads, headDim: s.headDim, maxSlots: MAX_SLOTS, maxContext: MAX_CONTEXT, type, rotate, blockSize, budgetBytes: 1 << 25 });
  for (let i = 0; i < MAX_SLOTS; i++) m.allocSlot();
  const now = new Int32Array(MAX_SLOTS);
  for (let round = 1; lens.some((t, i) => now[i]! < t); round++) {
    lens.forEach((t, i) => { now[i] = Math.min(t, round * blockSize); });
    assert.ok(m.step(now).ok);
  }
  return m.view();
}

/** Every slot's history, stored (natively) into each cache. */
function storeHistory(kvs: KVView[], s: AttentionShape, rng: Rng): void {
  const width = s.nKVHeads * s.headDim;
  HISTORY.forEach((len, slot) => {
    const k = rng.floats(len * width), v = rng.floats(len * width);
    const slots = new Int32Array(len).fill(slot), rows = Int32Array.from({ length: len }, (_, i) => i);
    for (const kv of kvs) storeInRounds(kv, k, v, slots, rows, width);
  });
}

/**
 * Random starting accumulators, as scores are added to what is there; small, so that the f32 rounding of
 * start + amount stays far below the tolerance on the amount (a long decode's weights are ~1e-3).
 */
function startAcc(s: AttentionShape, seed: number): Float32Array {
  return new Rng(seed).floats(ACCUMULATORS * s.nKVHeads * STRIDE, 1e-4);
}

function attend(b: Backend, kv: KVView, q: Float32Array, c: Batch, rows: number[], s: AttentionShape, acc?: Float32Array): Float32Array {
  const qWidth = s.nHeads * s.headDim;
  const out = new Float32Array(rows.length * qWidth);
  const scores: AttentionScores | undefined = acc ? { voters: pick(c.voters, rows, 1), acc, stride: STRIDE } : undefined;
  b.attention(out, pick(q, rows, qWidth), kv, LAYER, pick(c.slots, rows, 1), pick(c.rows, rows, 1), s, scores);
  return out;
}

/** x - start, element by element. */
function added(x: Float32Array, start: Float32Array): Float32Array {
  return x.map((v, i) => v - start[i]!);
}

/** The accumulator entries a batch adds to: (voter, KV head, rows 0..its largest row). */
function reached(c: Batch, kvHeads: number): Set<number> {
  const at = new Set<number>();
  c.voters.forEach((v, i) => {
    if (v < 0) return;
    for (let kv = 0; kv < kvHeads; kv++) for (let r = 0; r <= c.rows[i]!; r++) at.add((v * kvHeads + kv) * STRIDE + r);
  });
  return at;
}

function assertUntouched(got: Float32Array, start: Float32Array, c: Batch, kvHeads: number, what: string): void {
  const at = reached(c, kvHeads);
  for (let i = 0; i < got.length; i++) {
    if (at.has(i)) continue;
    if (!Object.is(got[i], start[i])) assert.fail(`${what}: acc[${i}] (reached by no voting token) changed from ${start[i]} to ${got[i]}`);
  }
}

/**
 * Stores the histories and the batch into a contiguous and a paged cache (a round at a time where the
 * cache has a residual window, attending each round before the next is stored, as the engine does), and
 * compares every ISA's scores on both against the reference's on the contiguous one.
 */
function expectScoresMatch(s: AttentionShape, type: KVType, rotate: boolean | undefined, batches: Batch[], tol: number, seed: number): void {
  const rng = new Rng(seed);
  const width = s.nKVHeads * s.headDim, qWidth = s.nHeads * s.headDim;
  const lens = HISTORY.map((h, slot) => Math.max(h, ...batches.flatMap((c) => Array.from(c.rows).filter((_, i) => c.slots[i] === slot).map((r) => r + 1))));
  const kvs = [contiguousCache(s, type, rotate), pagedCache(s, type, rotate, lens)];
  storeHistory(kvs, s, rng);
  for (const [n, c] of batches.entries()) {
    const label = `${type.k}/${type.v}${rotate ? ' rotated' : ''}, ${s.nHeads}/${s.nKVHeads} heads of ${s.headDim}, batch ${n} (${c.slots.length} tokens)`;
    const start = startAcc(s, seed + n);
    const want = start.slice();
    const isaAccs = new Map<string, Float32Array[]>();
    const k = rng.floats(c.slots.length * width), v = rng.floats(c.slots.length * width), q = rng.floats(c.slots.length * qWidth, 2);
    // Rows this batch stores (the decodes re-store their last row: the same row, new values).
    const stores = slotRounds(c.slots, kvs[0]!.residual?.chunkTokens ?? Infinity);
    for (const round of stores) {
      for (const kv of kvs) native.kvStore(kv, LAYER, pick(k, round, width), pick(v, round, width), pick(c.slots, round, 1), pick(c.rows, round, 1));
      attend(reference, kvs[0]!, q, c, round, s, want);
      forEachIsa((isa) => {
        const accs = isaAccs.get(isa) ?? kvs.map(() => start.slice());
        isaAccs.set(isa, accs);
        kvs.forEach((kv, i) => {
          const plain = attend(native, kv, q, c, round, s);
          const withScores = attend(native, kv, q, c, round, s, accs[i]!);
          assert.deepEqual(withScores, plain, `${label}, ${isa}: out changes when scores are asked for`);
        });
      });
    }
    const wantAdded = added(want, start);
    for (const [isa, [contiguous, paged]] of isaAccs) {
      const err = relativeError(added(contiguous!, start), wantAdded);
      assert.ok(err <= tol, `${label}, ${isa}: scores error ${err} > ${tol}`);
      assert.deepEqual(paged, contiguous, `${label}, ${isa}: paged scores differ from contiguous`);
      assertUntouched(contiguous!, start, c, s.nKVHeads, `${label}, ${isa}`);
    }
  }
}

// The batches: a large one (never split: at least 2 x 8 tokens), a small one (split into ranges at 8
// threads, including the chunk's tokens that share an accumulator), and a single long decode.
// Each batch continues slot 0 where the one before stopped, as a KIVI cache's window needs.
const BATCHES = [mixedBatch(70, HISTORY[0]!), mixedBatch(5, HISTORY[0]! + 70), ONE_DECODE];

for (const shape of [
  { nHeads: 32, nKVHeads: 4, headDim: 64 },
  { nHeads: 14, nKVHeads: 2, headDim: 128 },
  { nHeads: 6, nKVHeads: 2, headDim: 48 },
  { nHeads: 6, nKVHeads: 6, headDim: 20 },
  { nHeads: 4, nKVHeads: 1, headDim: 7 },
]) {
  test(`f32 scores match the reference on mixed, small (split) and single-decode batches (${shape.nHeads}/${shape.nKVHeads} heads of ${shape.headDim}), contiguous and paged, every ISA`, () => {
    withThreads(8, () => expectScoresMatch({ ...shape, scale: 1 / Math.sqrt(shape.headDim) }, { k: 'f32', v: 'f32' }, false, BATCHES, 1e-5, shape.headDim));
  });
}

const TINY: AttentionShape = { nHeads: 32, nKVHeads: 4, headDim: 64, scale: 1 / 8 };
/** Integer-dot keys (the query quantized to 8 bits, as in llama.cpp's CPU kernels). */
const QUANT_KEYS = 2e-2;

for (const [type, rotate, tol] of [
  [{ k: 'f16', v: 'f16' }, false, 1e-5],
  [{ k: 'q8_0', v: 'q8_0' }, true, QUANT_KEYS],
  [{ k: 'q8_0', v: 'q8_0' }, false, QUANT_KEYS],
  [{ k: 'q4_0', v: 'q4_0' }, true, QUANT_KEYS],
  [{ k: 'f16', v: 'q4_0' }, false, 1e-5],
  [{ k: 'kivi4c', v: 'kivi4t' }, false, 1e-5],
  [{ k: 'kivi2c', v: 'kivi2t' }, false, 1e-5],
] as [KVType, boolean, number][]) {
  test(`${type.k}/${type.v}${rotate ? ' rotated' : ''} scores match the reference on the same stored bytes, contiguous and paged, every ISA`, () => {
    withThreads(8, () => expectScoresMatch(TINY, type, rotate, BATCHES, tol, 17));
  });
}

test('head slices that are not whole blocks (decoded tiles) in q8_0: exact reads, scores within 1e-5', () => {
  withThreads(8, () => expectScoresMatch({ nHeads: 8, nKVHeads: 4, headDim: 8, scale: 1 / Math.sqrt(8) }, { k: 'q8_0', v: 'q8_0' }, true, BATCHES, 1e-5, 23));
});

test('every query head\'s weights sum to 1: a KV head\'s accumulator gains its group size per voting token', () => {
  const kv = contiguousCache(TINY, { k: 'f16', v: 'f16' });
  const rng = new Rng(4);
  storeHistory([kv], TINY, rng);
  const c = mixedBatch(5, HISTORY[0]!);
  const width = TINY.nKVHeads * TINY.headDim;
  native.kvStore(kv, LAYER, rng.floats(c.slots.length * width), rng.floats(c.slots.length * width), c.slots, c.rows);
  const q = rng.floats(c.slots.length * TINY.nHeads * TINY.headDim, 2);
  withThreads(8, () => forEachIsa((isa) => {
    const acc = new Float32Array(ACCUMULATORS * TINY.nKVHeads * STRIDE);
    attend(native, kv, q, c, Array.from(c.slots, (_, i) => i), TINY, acc);
    const group = TINY.nHeads / TINY.nKVHeads;
    for (let voter = 0; voter < ACCUMULATORS; voter++) {
      const voting = Array.from(c.voters).filter((v) => v === voter).length;
      for (let kvh = 0; kvh < TINY.nKVHeads; kvh++) {
        const row = acc.subarray((voter * TINY.nKVHeads + kvh) * STRIDE, (voter * TINY.nKVHeads + kvh + 1) * STRIDE);
        const sum = row.reduce((a, x) => a + x, 0);
        assert.ok(Math.abs(sum - group * voting) <= 1e-4 * group * Math.max(voting, 1), `${isa}: voter ${voter}, KV head ${kvh}: ${sum}`);
      }
    }
  }));
});

test('bad scores arguments are RangeErrors that name the problem, natively (both layouts) and in the reference', () => {
  const s: AttentionShape = { nHeads: 4, nKVHeads: 2, headDim: 8, scale: 0.3 };
  const contiguous = contiguousCache(s, { k: 'f32', v: 'f32' });
  const paged = pagedCache(s, { k: 'f32', v: 'f32' }, false, [40, 40, 0, 0]);
  const slots = Int32Array.of(0, 1), rows = Int32Array.of(39, 20);
  const q = new Float32Array(2 * 32), out = new Float32Array(2 * 32);
  const acc = new Float32Array(3 * 2 * 40);
  const cases: [AttentionScores, RegExp][] = [
    [{ voters: Int32Array.of(0), acc, stride: 40 }, /voters has 1 entries but the batch has 2 tokens/],
    [{ voters: Int32Array.of(0, -2), acc, stride: 40 }, /voters\[1\] = -2 is below -1/],
    [{ voters: Int32Array.of(0, 3), acc, stride: 40 }, /acc has 240 elements, too few for voter 3: needs \(3 \+ 1\) x 2 KV heads x stride 40 = 320/],
    [{ voters: Int32Array.of(0, 1), acc, stride: 39 }, /scores stride 39 is too small: token 0 attends rows 0..39/],
  ];
  for (const b of [native, reference]) {
    for (const kv of b === native ? [contiguous, paged] : [contiguous]) {
      for (const [scores, message] of cases) {
        assert.throws(() => b.attention(out, q, kv, 0, slots, rows, s, scores), (e: Error) => e instanceof RangeError && message.test(e.message), `${b.name} ${kv.layout}: ${message}`);
      }
    }
  }
  // Natively, acc may not share memory with out or q.
  const shared = new Float32Array(2 * 32 + 2 * 2 * 40);
  assert.throws(() => native.attention(shared.subarray(0, 64), q, contiguous, 0, slots, rows, s, { voters: Int32Array.of(0, 1), acc: shared.subarray(32), stride: 40 }),
    /acc and out must not share memory/);
  // A token that does not vote may attend past the stride; voters of -1 need no accumulator at all.
  native.attention(out, q, contiguous, 0, slots, rows, s, { voters: Int32Array.of(-1, -1), acc: new Float32Array(0), stride: 0 });
  const ok = new Float32Array(2 * 21);
  native.attention(out, q, contiguous, 0, slots, rows, s, { voters: Int32Array.of(-1, 0), acc: ok, stride: 21 });
  assert.ok(ok.every((x) => x > 0));
});
