// The KV formats (src/kv/formats, native/kv_format.cc): the layouts are ggml's (decoded the same as the
// GGUF dequantizer reads weights), native kvStore writes the reference's bytes exactly, values round-trip
// within the format's step, and attention over every format and layout matches the reference on every ISA.
//
// Tolerances, native attention against the reference on the same stored bytes: 1e-5 of the output's
// magnitude where the kernels read the stored values exactly (f32, f16, and q8_0/q4_0 heads that are not
// whole blocks, which are decoded to floats); 2e-2 where q8_0/q4_0 keys are read with integer dots, which
// quantize the query to 8 bits as llama.cpp's CPU kernels do.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArrayKV } from '../../src/backend/array-kv.js';
import type { AttentionShape, Backend, KVView } from '../../src/backend/backend.js';
import { KV_FORMATS, kvFormat, type KVFormatName, type KVType } from '../../src/kv/format.js';
import { f32ToF16 } from '../../src/kv/formats/half.js';
import { PagedKVManager } from '../../src/kv/paged-kv.js';
import { VirtualKVManager } from '../../src/kv/virtual-kv.js';
import { dequantize } from '../../src/model/gguf/dequant.js';
import { GGMLType } from '../../src/model/gguf/types.js';
import { forEachIsa, native, randomWeightBytes, reference, relativeError, Rng, slotRounds } from '../native/helpers.js';

const GGML: Partial<Record<KVFormatName, GGMLType>> = { f32: GGMLType.F32, f16: GGMLType.F16, q8_0: GGMLType.Q8_0, q4_0: GGMLType.Q4_0 };
/** ggml's formats, which GGUF weights also use. */
const GGML_FORMATS = KV_FORMATS.filter((f) => GGML[f.name] !== undefined);

test('f32ToF16 rounds to nearest even, with subnormals, overflow and NaN', () => {
  const cases: [number, number][] = [
    [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.1, 0x2e66], [65504, 0x7bff], [65520, 0x7c00], [1e9, 0x7c00],
    [2 ** -24, 0x0001], [2 ** -25, 0x0000], [3 * 2 ** -25, 0x0002], [2 ** -14, 0x0400], [1 + 2 ** -11, 0x3c00],
    [1 + 3 * 2 ** -11, 0x3c02], [Infinity, 0x7c00], [-Infinity, 0xfc00],
  ];
  for (const [x, h] of cases) assert.equal(f32ToF16(x), h, `f16(${x})`);
  assert.equal(f32ToF16(NaN) & 0x7c00, 0x7c00);
  assert.notEqual(f32ToF16(NaN) & 0x3ff, 0);
});

test('every ggml format decodes a row the way the GGUF dequantizer reads the same blocks', () => {
  const rng = new Rng(7);
  for (const f of GGML_FORMATS) {
    const bytes = randomWeightBytes(GGML[f.name]!, 1, 128, rng);
    const want = dequantize(GGML[f.name]!, bytes, 128);
    const got = new Float32Array(128);
    f.decode(bytes, 0, 0, 128, got, 0, 128, 0, 0);
    assert.deepEqual(got, want, f.name);
    // A slice that starts inside a block.
    const part = new Float32Array(8);
    f.decode(bytes, 0, 40, 8, part, 0, 128, 0, 0);
    assert.deepEqual(part, want.subarray(40, 48), `${f.name} slice`);
  }
});

/** Rows with the cases quantizers get wrong: zeros, ties at .5 steps, one huge value, negatives. */
function awkwardRows(rng: Rng, n: number): Float32Array {
  const x = rng.floats(n * 6, 3);
  x.fill(0, 0, n); // an all-zero row
  for (let i = 0; i < n; i++) x[n + i] = (i - 16) / 2; // exact halves
  x[2 * n + 5] = 1e4; // one outlier
  for (let i = 0; i < n; i++) x[3 * n + i] = -Math.abs(x[3 * n + i]!); // all negative
  return x;
}

test('native kvStore writes the reference bytes in every ggml format, and values round-trip within a step', () => {
  const rng = new Rng(11);
  const kvHeads = 2, headDim = 32, n = kvHeads * headDim;
  for (const f of GGML_FORMATS) {
    const type: KVType = { k: f.name, v: f.name };
    // Not rotated: the rows are the values as given, for the round trip.
    const kvs = [reference, native].map(() => new ArrayKV(1, 1, 8, kvHeads, headDim, type, undefined, false));
    const k = awkwardRows(rng, n), v = rng.floats(6 * n);
    const slots = new Int32Array(6), positions = Int32Array.from([0, 1, 2, 3, 4, 5]);
    reference.kvStore(kvs[0]!, 0, k, v, slots, positions);
    native.kvStore(kvs[1]!, 0, k, v, slots, positions);
    assert.deepEqual(kvs[1]!.keys(0), kvs[0]!.keys(0), `${f.name} keys`);
    assert.deepEqual(kvs[1]!.values(0), kvs[0]!.values(0), `${f.name} values`);
    // Round trip: each value within half a quantization step (q4_0: a whole step, for the top value that
    // rounds to 8 and is clamped to 7), plus the f16 rounding of the block scale.
    const back = new Float32Array(6 * n);
    for (let row = 0; row < 6; row++) f.decode(kvs[0]!.keys(0), row * kvs[0]!.rowBytes, 0, n, back, row * n, n, 0, 0);
    const worst: Partial<Record<KVFormatName, number>> = { f32: 0, f16: 2 ** -11, q8_0: 0.5 / 127, q4_0: 1 / 8 };
    for (let b = 0; b < (6 * n) / 32; b++) {
      let amax = 0;
      for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(k[b * 32 + i]!));
      for (let i = 0; i < 32; i++) {
        const at = b * 32 + i;
        const bound = f.blockValues === 1 ? Math.abs(k[at]!) * worst[f.name]! : amax * (worst[f.name]! + 2 ** -10);
        assert.ok(Math.abs(back[at]! - k[at]!) <= bound, `${f.name}: ${k[at]} came back as ${back[at]}`);
      }
    }
  }
});

const TOLERANCE: Record<KVFormatName, number> = { f32: 1e-5, f16: 1e-5, q8_0: 2e-2, q4_0: 2e-2, kivi2c: 1e-5, kivi4c: 1e-5, kivi2t: 1e-5, kivi4t: 1e-5 };
const EXACT_READ = 1e-5;

function tolerance(type: KVType, headDim: number): number {
  // Keys that are not whole blocks per head are decoded to floats: exact reads.
  const k = kvFormat(type.k);
  const keyTol = headDim % k.blockValues === 0 ? TOLERANCE[type.k] : EXACT_READ;
  return Math.max(keyTol, EXACT_READ);
}

interface Batch {
  slots: Int32Array;
  positions: Int32Array;
  q: Float32Array;
  k?: Float32Array;
  v?: Float32Array;
}

/** kvStore, in rounds where the cache asks for them. */
function storeRows(b: Backend, kv: KVView, k: Float32Array, v: Float32Array, slots: Int32Array, positions: Int32Array, width: number): void {
  for (const rows of slotRounds(slots, kv.residual?.chunkTokens ?? Infinity)) {
    b.kvStore(kv, 1, pick(k, rows, width), pick(v, rows, width), Int32Array.from(rows, (i) => slots[i]!), Int32Array.from(rows, (i) => positions[i]!));
  }
}

function pick(x: Float32Array, rows: number[], width: number): Float32Array {
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, j) => out.set(x.subarray(r * width, (r + 1) * width), j * width));
  return out;
}

/** Stores histories of [300, 0, 520, 9] tokens and a batch (a 70-token chunk of slot 0 plus decodes) into kv. */
function storeCase(b: Backend, kv: KVView, s: AttentionShape, seed: number, storeBatch = true): Batch {
  const rng = new Rng(seed);
  const width = s.nKVHeads * s.headDim;
  const history = [300, 0, 520, 9];
  const store = (slots: Int32Array, positions: Int32Array) => {
    storeRows(b, kv, rng.floats(slots.length * width), rng.floats(slots.length * width), slots, positions, width);
  };
  history.forEach((len, slot) => {
    if (len > 0) store(new Int32Array(len).fill(slot), Int32Array.from({ length: len }, (_, i) => i));
  });
  const slots: number[] = [], positions: number[] = [];
  for (let i = 0; i < 70; i++) { slots.push(0); positions.push(300 + i); }
  for (const slot of [2, 1, 3]) { slots.push(slot); positions.push(history[slot]!); }
  const batch = { slots: Int32Array.from(slots), positions: Int32Array.from(positions) };
  const width2 = slots.length * width;
  const k = rng.floats(width2), v = rng.floats(width2);
  const q = rng.floats(slots.length * s.nHeads * s.headDim, 2);
  if (storeBatch) storeRows(b, kv, k, v, batch.slots, batch.positions, width);
  return { ...batch, q, k, v };
}

function attend(b: Backend, kv: KVView, c: Batch, s: AttentionShape): Float32Array {
  const out = new Float32Array(c.q.length);
  b.attention(out, c.q, kv, 1, c.slots, c.positions, s);
  return out;
}

/**
 * A cache with a residual window: the batch stored and attended a round at a time, as the engine runs
 * it, since a token must be attended before the next rows of its slot are stored.
 */
function storeAndAttend(b: Backend, kv: KVView, c: Batch, s: AttentionShape): Float32Array {
  const width = s.nKVHeads * s.headDim, qWidth = s.nHeads * s.headDim;
  const out = new Float32Array(c.q.length);
  for (const rows of slotRounds(c.slots, kv.residual!.chunkTokens)) {
    const slots = Int32Array.from(rows, (i) => c.slots[i]!), positions = Int32Array.from(rows, (i) => c.positions[i]!);
    b.kvStore(kv, 1, pick(c.k!, rows, width), pick(c.v!, rows, width), slots, positions);
    const part = new Float32Array(rows.length * qWidth);
    b.attention(part, pick(c.q, rows, qWidth), kv, 1, slots, positions, s);
    rows.forEach((r, j) => out.set(part.subarray(j * qWidth, (j + 1) * qWidth), r * qWidth));
  }
  return out;
}

function pagedView(type: KVType, s: AttentionShape): KVView {
  const blockSize = 32;
  const m = new PagedKVManager({ layers: 2, kvHeads: s.nKVHeads, headDim: s.headDim, maxSlots: 4, maxContext: 600, type, blockSize, budgetBytes: 1 << 24 });
  for (let i = 0; i < 4; i++) m.allocSlot();
  // Grown a block at a time in turn, so each slot's blocks are scattered through the pool.
  const targets = [370, 1, 521, 10], lens = new Int32Array(4);
  for (let round = 1; targets.some((t, i) => lens[i]! < t); round++) {
    targets.forEach((t, i) => { lens[i] = Math.min(t, round * blockSize); });
    assert.ok(m.step(lens).ok);
  }
  return m.view();
}

const TYPES: KVType[] = [
  { k: 'f32', v: 'f32' }, { k: 'f16', v: 'f16' }, { k: 'q8_0', v: 'q8_0' }, { k: 'q4_0', v: 'q4_0' }, { k: 'q8_0', v: 'q4_0' }, { k: 'f16', v: 'q8_0' },
  { k: 'kivi2c', v: 'kivi2t' }, { k: 'kivi4c', v: 'kivi4t' }, { k: 'kivi2t', v: 'kivi2t' },
];
// Head sizes that are whole blocks (the formats' own kernels) and not (the bundled model's 4 x 8: decoded tiles).
const SHAPES: AttentionShape[] = [
  { nHeads: 32, nKVHeads: 4, headDim: 64, scale: 1 / 8 },
  { nHeads: 8, nKVHeads: 2, headDim: 128, scale: 1 / Math.sqrt(128) },
  { nHeads: 8, nKVHeads: 4, headDim: 8, scale: 1 / Math.sqrt(8) },
];

for (const type of TYPES.filter((t) => t.k.startsWith('kivi'))) {
  for (const s of SHAPES) {
    const label = `${type.k}/${type.v}, ${s.nHeads}/${s.nKVHeads} heads of ${s.headDim}`;
    test(`${label}: native attention matches the reference, contiguous and paged, stored and attended in rounds, every ISA`, () => {
      const expected = new ArrayKV(2, 4, 600, s.nKVHeads, s.headDim, type);
      const c = storeCase(reference, expected, s, 5, false);
      const want = storeAndAttend(reference, expected, c, s);
      forEachIsa((isa) => {
        // Each ISA on fresh copies of the caches, since attending moves nothing but storing does.
        const kv = new ArrayKV(2, 4, 600, s.nKVHeads, s.headDim, type);
        const paged = pagedView(type, s);
        storeCase(native, kv, s, 5, false);
        storeCase(native, paged, s, 5, false);
        const got = storeAndAttend(native, kv, c, s);
        assert.ok(relativeError(got, want) <= 1e-5, `${isa}: error ${relativeError(got, want)}`);
        assert.deepEqual(kv.keys(1), expected.keys(1), `${isa}: native stores the reference's key bytes`);
        assert.deepEqual(kv.residual!.encoded(1), expected.residual!.encoded(1), `${isa}: the same boundaries`);
        assert.deepEqual(storeAndAttend(native, paged, c, s), got, `${isa}: paged differs from contiguous`);
      });
    });
  }
}

for (const type of TYPES.filter((t) => !t.k.startsWith('kivi'))) {
  for (const s of SHAPES) {
    const label = `${type.k}/${type.v}, ${s.nHeads}/${s.nKVHeads} heads of ${s.headDim}`;
    test(`${label}: native attention matches the reference, contiguous and paged, prefill and split decodes, every ISA`, () => {
      const tol = tolerance(type, s.headDim);
      const contiguous = [reference, native].map(() => new ArrayKV(2, 4, 600, s.nKVHeads, s.headDim, type));
      const c = storeCase(reference, contiguous[0]!, s, 5);
      storeCase(native, contiguous[1]!, s, 5);
      assert.deepEqual(contiguous[1]!.keys(1), contiguous[0]!.keys(1), 'native and reference store the same key bytes');
      const paged = pagedView(type, s);
      storeCase(native, paged, s, 5);
      const want = attend(reference, contiguous[0]!, c, s);
      const decodes: Batch = { slots: c.slots.slice(70), positions: c.positions.slice(70), q: c.q.slice(70 * s.nHeads * s.headDim) };
      const wantDecodes = attend(reference, contiguous[0]!, decodes, s);
      forEachIsa((isa) => {
        const got = attend(native, contiguous[1]!, c, s);
        const err = relativeError(got, want);
        assert.ok(err <= tol, `${isa}: error ${err} > ${tol}`);
        assert.deepEqual(attend(native, paged, c, s), got, `${isa}: paged differs from contiguous`);
        // Few tokens: each decode's positions are split into ranges and merged.
        const errDecodes = relativeError(attend(native, contiguous[1]!, decodes, s), wantDecodes);
        assert.ok(errDecodes <= tol, `${isa}: split decodes error ${errDecodes} > ${tol}`);
      });
    });
  }
}

test('the reference attention on a quantized cache equals f32 attention on the decoded values (the oracle is exact)', () => {
  const s = SHAPES[0]!;
  const type: KVType = { k: 'q4_0', v: 'q8_0' };
  const quantized = new ArrayKV(2, 4, 600, s.nKVHeads, s.headDim, type, undefined, false);
  const c = storeCase(reference, quantized, s, 9);
  // The decoded rows, stored again as f32.
  const exact = new ArrayKV(2, 4, 600, s.nKVHeads, s.headDim, { k: 'f32', v: 'f32' });
  const width = s.nKVHeads * s.headDim;
  for (const [slot, len] of [[0, 370], [1, 1], [2, 521], [3, 10]] as const) {
    const k = new Float32Array(len * width), v = new Float32Array(len * width);
    for (let p = 0; p < len; p++) {
      const at = slot * quantized.pageBytes + p * quantized.rowBytes;
      quantized.keyFormat.decode(quantized.keys(1), at, 0, width, k, p * width, width, 0, 0);
      quantized.valueFormat.decode(quantized.values(1), at, 0, width, v, p * width, width, 0, 0);
    }
    reference.kvStore(exact, 1, k, v, new Int32Array(len).fill(slot), Int32Array.from({ length: len }, (_, i) => i));
  }
  assert.deepEqual(attend(reference, quantized, c, s), attend(reference, exact, c, s));
});

test('a virtual cache of q8_0 rows (34 bytes, not a divisor of the page) keeps rows whole per page, shares and compacts them', () => {
  const s = SHAPES[2]!; // 4 KV heads of 8: one 34-byte q8_0 block a row
  const kv = new VirtualKVManager({ layers: 2, kvHeads: 4, headDim: 8, maxSlots: 3, maxContext: 400, type: { k: 'q8_0', v: 'q8_0' }, pageSize: 4096, budgetBytes: 1 << 20 });
  try {
    const view = kv.view();
    assert.equal(view.rowBytes, 34);
    assert.equal(view.rowsPerPage, 120);
    assert.equal(kv.blocks.blockTokens, 120);
    const a = kv.allocSlot()!, b = kv.allocSlot()!, c = kv.allocSlot()!;
    assert.ok(kv.step(Int32Array.of(300, 0, 0)).ok);
    const rng = new Rng(3);
    const k = rng.floats(300 * 32), v = rng.floats(300 * 32);
    const positions = Int32Array.from({ length: 300 }, (_, i) => i);
    native.kvStore(view, 1, k, v, new Int32Array(300).fill(a), positions);
    // b shares a's first 250 tokens: two whole pages mapped, the partial third copied.
    assert.ok(kv.sharePrefix(a, b, 250).ok);
    const q = rng.floats(8 * 8, 2);
    const one = (slot: number, pos: number) => {
      const out = new Float32Array(q.length);
      native.attention(out, q, view, 1, Int32Array.of(slot), Int32Array.of(pos), s);
      return out;
    };
    assert.deepEqual(one(b, 249), one(a, 249));
    // c holds a's tokens 0..99 then 200..299 after compaction of a copy.
    assert.ok(kv.sharePrefix(a, c, 300).ok);
    const keep = Int32Array.from([...Array.from({ length: 100 }, (_, i) => i), ...Array.from({ length: 100 }, (_, i) => 200 + i)]);
    assert.ok(kv.compact(c, keep).ok);
    const ref = new ArrayKV(2, 1, 200, 4, 8, { k: 'q8_0', v: 'q8_0' });
    const pick = (x: Float32Array) => Float32Array.from(Array.from(keep).flatMap((p) => Array.from(x.subarray(p * 32, (p + 1) * 32))));
    native.kvStore(ref, 1, pick(k), pick(v), new Int32Array(200), Int32Array.from({ length: 200 }, (_, i) => i));
    const out = new Float32Array(q.length), want = new Float32Array(q.length);
    native.attention(out, q, view, 1, Int32Array.of(c), Int32Array.of(199), s);
    native.attention(want, q, ref, 1, Int32Array.of(0), Int32Array.of(199), s);
    assert.deepEqual(out, want);
    assert.deepEqual(one(a, 299), one(a, 299));
  } finally {
    kv.close();
  }
});

test('unknown format names and rows that are not whole blocks are errors that say what fits', () => {
  assert.throws(() => kvFormat('q5_0'), /unknown KV cache type "q5_0"; choose one of f32, f16, q8_0, q4_0/);
  assert.throws(() => new ArrayKV(1, 1, 8, 3, 8, { k: 'q8_0', v: 'f16' }),
    /K cache type q8_0 stores blocks of 32 values along a row, and this model's KV row is 3 x 8 = 24 values .*types that fit: f32, f16/);
  assert.throws(() => new ArrayKV(1, 1, 8, 3, 8, { k: 'f16', v: 'q4_0' }), /the V cache type q4_0/);
});

test('a rotated cache: the same attention as an unrotated one on f32, native storing the reference bytes, on every ISA', () => {
  for (const s of [SHAPES[0]!, SHAPES[2]!, { nHeads: 6, nKVHeads: 2, headDim: 48, scale: 0.2 }]) {
    const plain = new ArrayKV(2, 4, 600, s.nKVHeads, s.headDim, { k: 'f32', v: 'f32' });
    const rot = [reference, native].map(() => new ArrayKV(2, 4, 600, s.nKVHeads, s.headDim, { k: 'f32', v: 'f32' }, undefined, true));
    const c = storeCase(reference, plain, s, 3);
    storeCase(reference, rot[0]!, s, 3);
    storeCase(native, rot[1]!, s, 3);
    assert.deepEqual(rot[1]!.keys(1), rot[0]!.keys(1), 'native rotates K as the reference does');
    assert.notDeepEqual(rot[0]!.keys(1), plain.keys(1), 'the cache holds rotated rows');
    const want = attend(reference, plain, c, s);
    assert.ok(relativeError(attend(reference, rot[0]!, c, s), want) <= 1e-5);
    forEachIsa((isa) => {
      const err = relativeError(attend(native, rot[1]!, c, s), want);
      assert.ok(err <= 1e-5, `${isa}, head size ${s.headDim}: ${err}`);
    });
  }
  // Quantized and rotated: native and reference still store the same bytes.
  const q = [reference, native].map(() => new ArrayKV(2, 4, 600, 4, 64, { k: 'q4_0', v: 'q8_0' }, undefined, true));
  storeCase(reference, q[0]!, SHAPES[0]!, 8);
  storeCase(native, q[1]!, SHAPES[0]!, 8);
  assert.deepEqual(q[1]!.keys(1), q[0]!.keys(1));
  assert.deepEqual(q[1]!.values(1), q[0]!.values(1));
});
