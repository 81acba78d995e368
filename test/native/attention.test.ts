// kvStore and attention against the reference on a mixed token-packed batch: a prefill chunk of one
// slot (continuing an earlier chunk), single-token decodes of other slots at various positions, GQA,
// on every ISA. Tolerance: max |native - reference| / max |reference| <= 1e-5 (f32 online softmax
// against the reference's f64 two-pass softmax).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArrayKV } from '../../src/backend/array-kv.js';
import type { AttentionShape, Backend } from '../../src/backend/backend.js';
import { forEachIsa, native, reference, relativeError, Rng } from './helpers.js';

const MAX_SLOTS = 4, MAX_CONTEXT = 300;

/** Fills slot histories (positions before this batch) identically in both caches. */
function prefillHistory(kvs: ArrayKV[], backends: Backend[], layer: number, history: Map<number, number>, rng: Rng, width: number) {
  for (const [slot, len] of history) {
    if (len === 0) continue;
    const k = rng.floats(len * width), v = rng.floats(len * width);
    const slots = new Int32Array(len).fill(slot), positions = Int32Array.from({ length: len }, (_, i) => i);
    backends.forEach((b, i) => b.kvStore(kvs[i]!, layer, k, v, slots, positions));
  }
}

/** Native attention on kvs[1] against the reference on kvs[0] (the same contents), on every ISA: <= 1e-5. */
function expectMatchesReference(kvs: ArrayKV[], layer: number, q: Float32Array, slots: Int32Array, positions: Int32Array, s: AttentionShape) {
  const want = new Float32Array(q.length);
  reference.attention(want, q, kvs[0]!, layer, slots, positions, s);
  forEachIsa((isa) => {
    const got = new Float32Array(q.length);
    native.attention(got, q, kvs[1]!, layer, slots, positions, s);
    const err = relativeError(got, want);
    assert.ok(err <= 1e-5, `${isa}, positions ${positions.slice(0, 4).join(',')}...: error ${err}`);
  });
}

// GQA groups of 1 to 12 heads and head sizes with and without whole 16/32-float slices, so every path of
// the grouped SIMD tile kernels (8-head chunks plus a remainder, transposed 16-position blocks plus a
// tail, per-head fallbacks) is compared.
for (const shape of [
  { nHeads: 8, nKVHeads: 2, headDim: 64 },
  { nHeads: 32, nKVHeads: 4, headDim: 64 },
  { nHeads: 24, nKVHeads: 2, headDim: 32 },
  { nHeads: 14, nKVHeads: 2, headDim: 128 },
  { nHeads: 6, nKVHeads: 2, headDim: 48 },
  { nHeads: 6, nKVHeads: 6, headDim: 20 },
  { nHeads: 4, nKVHeads: 1, headDim: 7 },
]) {
  test(`attention on a mixed prefill + decode batch matches the reference (${shape.nHeads}/${shape.nKVHeads} heads of ${shape.headDim})`, () => {
    const rng = new Rng(shape.headDim * 31 + shape.nHeads);
    const s: AttentionShape = { ...shape, scale: 1 / Math.sqrt(shape.headDim) };
    const width = shape.nKVHeads * shape.headDim;
    const layer = 1;
    const kvs = [0, 1].map(() => new ArrayKV(2, MAX_SLOTS, MAX_CONTEXT, shape.nKVHeads, shape.headDim));
    const backends: Backend[] = [reference, native];
    // Slot 0: a 70-token prefill chunk after 100 earlier tokens. Slots 1-3: decodes at 0, 250 and 9.
    const history = new Map([[0, 100], [1, 0], [2, 250], [3, 9]]);
    prefillHistory(kvs, backends, layer, history, rng, width);
    const slots: number[] = [], positions: number[] = [];
    for (let i = 0; i < 70; i++) { slots.push(0); positions.push(100 + i); }
    for (const slot of [2, 1, 3]) { slots.push(slot); positions.push(history.get(slot)!); }
    const n = slots.length;
    const sl = Int32Array.from(slots), pos = Int32Array.from(positions);
    const k = rng.floats(n * width), v = rng.floats(n * width), q = rng.floats(n * shape.nHeads * shape.headDim, 2);
    backends.forEach((b, i) => b.kvStore(kvs[i]!, layer, k, v, sl, pos));
    assert.deepEqual(kvs[1]!.keys(layer), kvs[0]!.keys(layer));
    assert.deepEqual(kvs[1]!.values(layer), kvs[0]!.values(layer));
    expectMatchesReference(kvs, layer, q, sl, pos, s);
  });
}

// A decode batch of fewer tokens than twice the pool's threads splits each long sequence's positions
// into ranges attended in parallel and merged afterwards (attention_batch.h); lengths that are and are
// not whole tiles, for each shape.
for (const shape of [
  { nHeads: 32, nKVHeads: 4, headDim: 64 },
  { nHeads: 14, nKVHeads: 2, headDim: 128 },
  { nHeads: 4, nKVHeads: 1, headDim: 7 },
]) {
  test(`attention of a few long decodes (split into ranges) matches the reference (${shape.nHeads}/${shape.nKVHeads} heads of ${shape.headDim})`, () => {
    const rng = new Rng(shape.headDim * 7 + shape.nHeads);
    const s: AttentionShape = { ...shape, scale: 1 / Math.sqrt(shape.headDim) };
    const width = shape.nKVHeads * shape.headDim;
    const maxContext = 2100, layer = 0;
    const kvs = [0, 1].map(() => new ArrayKV(1, 2, maxContext, shape.nKVHeads, shape.headDim));
    const backends: Backend[] = [reference, native];
    prefillHistory(kvs, backends, layer, new Map([[0, 2048], [1, 777]]), rng, width);
    for (const [slots, positions] of [[[0], [2047]], [[1], [776]], [[0, 1], [2047, 776]], [[1], [513]]]) {
      const sl = Int32Array.from(slots!), pos = Int32Array.from(positions!);
      expectMatchesReference(kvs, layer, rng.floats(sl.length * shape.nHeads * shape.headDim, 2), sl, pos, s);
    }
  });
}
