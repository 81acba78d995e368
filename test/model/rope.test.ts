// RoPE in the reference backend against rotations computed by hand, for both pair orderings.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReferenceBackend } from '../../src/backend/reference/reference-backend.js';

const b = new ReferenceBackend();
const params = { nHeads: 1, headDim: 4, ropeDim: 4, freqBase: 100, freqScale: 1 };

test("rope 'normal' rotates adjacent pairs by pos * base^(-2i/d)", () => {
  const x = Float32Array.from([1, 0, 0, 1]);
  b.rope(x, Int32Array.of(3), { ...params, mode: 'normal' });
  // pair (x0, x1) by angle 3 * 100^0 = 3; pair (x2, x3) by angle 3 * 100^(-1/2) = 0.3
  const want = [Math.cos(3), Math.sin(3), -Math.sin(0.3), Math.cos(0.3)];
  want.forEach((w, i) => assert.ok(Math.abs(x[i]! - w) < 1e-6, `${i}: ${x[i]} vs ${w}`));
});

test("rope 'neox' rotates (x[i], x[i + d/2]) pairs", () => {
  const x = Float32Array.from([1, 0, 0, 1]);
  b.rope(x, Int32Array.of(3), { ...params, mode: 'neox' });
  // pair (x0, x2) by angle 3; pair (x1, x3) by 0.3
  const want = [Math.cos(3), -Math.sin(0.3), Math.sin(3), Math.cos(0.3)];
  want.forEach((w, i) => assert.ok(Math.abs(x[i]! - w) < 1e-6, `${i}: ${x[i]} vs ${w}`));
});

test('rope leaves dims past ropeDim alone and position 0 unchanged', () => {
  const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  b.rope(x, Int32Array.of(0, 5), { nHeads: 1, headDim: 4, ropeDim: 2, freqBase: 10000, freqScale: 1, mode: 'normal' });
  assert.deepEqual(Array.from(x.subarray(0, 4)), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(x.subarray(6, 8)), [7, 8]);
  assert.ok(Math.abs(x[4]! - (5 * Math.cos(5) - 6 * Math.sin(5))) < 1e-5);
});

test('rope divides each pair\'s frequency by its factor and scales cos and sin by the attention factor', () => {
  const x = Float32Array.from([1, 0, 0, 1]);
  b.rope(x, Int32Array.of(3), { ...params, mode: 'normal', freqFactors: Float32Array.of(2, 0.5), attnFactor: 1.5 });
  // pair 0 by 3 / 2 = 1.5; pair 1 by 0.3 / 0.5 = 0.6; both scaled by 1.5
  const want = [1.5 * Math.cos(1.5), 1.5 * Math.sin(1.5), -1.5 * Math.sin(0.6), 1.5 * Math.cos(0.6)];
  want.forEach((w, i) => assert.ok(Math.abs(x[i]! - w) < 1e-6, `${i}: ${x[i]} vs ${w}`));
  assert.throws(() => b.rope(x, Int32Array.of(3), { ...params, mode: 'normal', freqFactors: Float32Array.of(1) }), /2 rotated pairs/);
});

test('rope turns pair i by the f32 product of the position and i factors of base^(-2/d), as llama.cpp does', () => {
  // At a large position the f32 angle is off the exact one by far more than f32's rounding of the result.
  const p = { nHeads: 1, headDim: 6, ropeDim: 6, freqBase: 10000, freqScale: 1, mode: 'normal' as const };
  const pos = 100_000;
  const f = Math.fround;
  const step = f(Math.pow(10000, f(-2 / 6)));
  const angles = [f(pos), f(f(pos) * step), f(f(f(pos) * step) * step)];
  const x = Float32Array.from([1, 0, 1, 0, 1, 0]);
  b.rope(x, Int32Array.of(pos), p);
  angles.forEach((a, i) => {
    assert.equal(x[2 * i], f(Math.cos(a)), `pair ${i} cos`);
    assert.equal(x[2 * i + 1], f(Math.sin(a)), `pair ${i} sin`);
  });
  const off = [1, 2].map((i) => Math.abs(Math.cos(pos * Math.pow(10000, (-2 * i) / 6)) - x[2 * i]!));
  assert.ok(Math.max(...off) > 1e-4, `the f32 angles differ from the exact ones here (${off})`);
});
