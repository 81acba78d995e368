// The non-matmul ops against the reference backend on random inputs with odd sizes.
// Tolerances (max |native - reference| / max |reference|):
// - embed, toFloat32, add, addBias: exact (the same f32 operations on the same values).
// - rmsnorm, addRmsnorm, swiglu: 1e-6 (native sums squares in f64 like the reference, uses f32 exp).
// - rope: 1e-6 (angles in f64 on both sides, rotation in f32 natively).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RopeParams } from '../../src/backend/backend.js';
import { GGMLType, typeName } from '../../src/model/gguf/types.js';
import { forEachIsa, native, randomWeightBytes, reference, relativeError, Rng } from './helpers.js';

const TYPES = [
  GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q6_K,
  GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL,
];
const BLOCK32 = new Set([GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL]);

test('toFloat32 and embed dequantize every type exactly like the reference', () => {
  const rng = new Rng(11);
  for (const type of TYPES) {
    const cols = type === GGMLType.Q4_K || type === GGMLType.Q6_K ? 512 : BLOCK32.has(type) ? 96 : 37;
    const rows = 13;
    const bytes = randomWeightBytes(type, rows, cols, rng);
    const wr = reference.createWeight('t', type, rows, cols, bytes);
    const wn = native.createWeight('t', type, rows, cols, bytes);
    assert.deepEqual(native.toFloat32(wn), reference.toFloat32(wr), typeName(type));
    const ids = Int32Array.from([0, 12, 5, 5, 7]);
    const want = new Float32Array(ids.length * cols), got = new Float32Array(ids.length * cols);
    reference.embed(want, ids, wr);
    native.embed(got, ids, wn);
    assert.deepEqual(got, want, typeName(type));
  }
});

test('rmsnorm matches the reference, including in place', () => {
  const rng = new Rng(12);
  for (const [n, dim] of [[1, 1], [3, 7], [5, 64], [2, 2049]] as const) {
    const x = rng.floats(n * dim, 3), w = rng.floats(dim);
    const want = new Float32Array(n * dim), got = new Float32Array(n * dim);
    reference.rmsnorm(want, x, w, n, dim, 1e-5);
    native.rmsnorm(got, x, w, n, dim, 1e-5);
    assert.ok(relativeError(got, want) <= 1e-6, `n=${n} dim=${dim}`);
    native.rmsnorm(x, x, w, n, dim, 1e-5);
    assert.deepEqual(x, got);
  }
});

test('addRmsnorm matches the reference on every ISA, with out aliasing y or x', () => {
  const rng = new Rng(16);
  forEachIsa((isa) => {
    for (const [n, dim] of [[1, 1], [3, 7], [5, 64], [2, 2049]] as const) {
      const x = rng.floats(n * dim, 3), y = rng.floats(n * dim, 3), w = rng.floats(dim);
      const xWant = x.slice(), want = new Float32Array(n * dim);
      reference.addRmsnorm(xWant, y, want, w, n, dim, 1e-5);
      const label = `${isa} n=${n} dim=${dim}`;
      // As the model calls it: the norm overwrites the residual branch y.
      const xGot = x.slice(), yGot = y.slice();
      native.addRmsnorm(xGot, yGot, yGot, w, n, dim, 1e-5);
      assert.deepEqual(xGot, xWant, label);
      assert.ok(relativeError(yGot, want) <= 1e-6, label);
      const xInPlace = x.slice();
      native.addRmsnorm(xInPlace, y, xInPlace, w, n, dim, 1e-5);
      assert.deepEqual(xInPlace, yGot, label);
    }
  });
});

test('rope matches the reference in both pair orders, with partial rotation and position scaling', () => {
  const rng = new Rng(13);
  const cases: RopeParams[] = [
    { nHeads: 3, headDim: 8, ropeDim: 8, freqBase: 10000, freqScale: 1, mode: 'normal' },
    { nHeads: 4, headDim: 64, ropeDim: 64, freqBase: 500000, freqScale: 0.25, mode: 'normal' },
    { nHeads: 2, headDim: 64, ropeDim: 32, freqBase: 10000, freqScale: 1, mode: 'neox' },
    { nHeads: 5, headDim: 128, ropeDim: 128, freqBase: 1e6, freqScale: 1, mode: 'neox' },
    // Per-pair frequency factors (Llama 3 rope_freqs, LongRoPE) and an attention factor
    { nHeads: 2, headDim: 64, ropeDim: 64, freqBase: 500000, freqScale: 1, mode: 'normal', freqFactors: Float32Array.from({ length: 32 }, (_, i) => 1 + (i * 7) % 5) },
    { nHeads: 3, headDim: 96, ropeDim: 48, freqBase: 10000, freqScale: 0.5, mode: 'neox', freqFactors: Float32Array.from({ length: 24 }, (_, i) => 0.5 + i / 3), attnFactor: 1.19 },
  ];
  for (const p of cases) {
    const positions = Int32Array.from([0, 1, 7, 4095, 33]);
    const x = rng.floats(positions.length * p.nHeads * p.headDim);
    const want = x.slice(), got = x.slice();
    reference.rope(want, positions, p);
    native.rope(got, positions, p);
    assert.ok(relativeError(got, want) <= 1e-6, JSON.stringify(p));
  }
});

test('rope keeps no stale angles across calls that differ only in frequency or attention factors', () => {
  // Native caches the last position's angles per thread; factors changed in place or an attention
  // factor alone must not reuse them.
  const p: RopeParams = { nHeads: 1, headDim: 8, ropeDim: 8, freqBase: 10000, freqScale: 1, mode: 'neox' };
  const factors = Float32Array.of(1, 2, 4, 8);
  const pos = Int32Array.of(9);
  for (const q of [p, { ...p, freqFactors: factors }, { ...p, freqFactors: factors, attnFactor: 2 }, { ...p, attnFactor: 2 }]) {
    const x = new Float32Array(8).fill(1);
    const want = x.slice(), got = x.slice();
    reference.rope(want, pos, q);
    native.rope(got, pos, q);
    assert.ok(relativeError(got, want) <= 1e-6, JSON.stringify(q));
  }
  factors[1] = 3;
  const want = new Float32Array(8).fill(1), got = want.slice();
  reference.rope(want, pos, { ...p, freqFactors: factors });
  native.rope(got, pos, { ...p, freqFactors: factors });
  assert.ok(relativeError(got, want) <= 1e-6, 'factors changed in place');
});

test('geglu evaluates GELU as llama.cpp does (tanh form, f16 in and out) and matches the reference bit for bit, every ISA', () => {
  const rng = new Rng(15);
  // Past +-10 (the cut-offs), ties between f16 values, and tails of every vector width.
  const inputs = [1, 15, 17, 5633, 70000].map((len) => {
    const g = rng.floats(len, 12);
    for (let i = 0; i < len; i += 7) g[i] = 1 + (2 * (i % 5) + 1) * 2 ** -11;  // halfway between two f16 values
    return { len, g, u: rng.floats(len) };
  });
  const wants = inputs.map(({ len, g, u }) => {
    const want = new Float32Array(len);
    reference.geglu(want, g, u, len);
    return want;
  });
  forEachIsa((isa) => {
    inputs.forEach(({ len, g, u }, k) => {
      const got = new Float32Array(len);
      native.geglu(got, g, u, len);
      assert.deepEqual(got, wants[k], `${isa} geglu len=${len}`);
      const inPlace = g.slice();
      native.geglu(inPlace, inPlace, u, len);
      assert.deepEqual(inPlace, got, `${isa} in place`);
    });
    // gelu(1) = 0.8411920 and gelu(-2) = -0.04540231 in the tanh form, each as the f16 nearest to it; an
    // input between f16 values takes its nearest one's (1 + 2^-12 is 1 in f16); from 10 up the input
    // itself, from -10 down 0.
    const x = Float32Array.of(1, -2, 1 + 2 ** -12, 10, 12.5, -10, -30);
    const out = new Float32Array(x.length);
    native.geglu(out, x, new Float32Array(x.length).fill(1), x.length);
    assert.deepEqual([...out], [0.84130859375, -0.04541015625, 0.84130859375, 10, 12.5, 0, 0], isa);
  });
  const out = new Float32Array(2);
  assert.throws(() => native.geglu(out, out, new Float32Array(1), 2), RangeError);
});

test('swiglu, add and addBias match the reference', () => {
  const rng = new Rng(14);
  for (const len of [1, 15, 5633]) {
    const g = rng.floats(len, 8), u = rng.floats(len);
    const want = new Float32Array(len), got = new Float32Array(len);
    reference.swiglu(want, g, u, len);
    native.swiglu(got, g, u, len);
    assert.ok(relativeError(got, want) <= 1e-6, `swiglu len=${len}`);
    const x = rng.floats(len), y = rng.floats(len);
    const xr = x.slice(), xn = x.slice();
    reference.add(xr, y, len);
    native.add(xn, y, len);
    assert.deepEqual(xn, xr);
  }
  const bias = rng.floats(7), x = rng.floats(3 * 7);
  const xr = x.slice(), xn = x.slice();
  reference.addBias(xr, bias, 3);
  native.addBias(xn, bias, 3);
  assert.deepEqual(xn, xr);
});
