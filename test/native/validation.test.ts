// Wrong calls into the native core throw JS errors (never touch memory they should not): short
// buffers, wrong array types, out-of-range ids, slots and positions, bad weight types and shapes,
// objects that are not weights, weights of a closed model file.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArrayKV } from '../../src/backend/array-kv.js';
import { GGMLType } from '../../src/model/gguf/types.js';
import { bundledModel } from '../paths.js';
import { addon, native, randomWeightBytes, Rng } from './helpers.js';

const rng = new Rng(99);
const w = native.createWeight('w', GGMLType.Q8_0, 4, 64, randomWeightBytes(GGMLType.Q8_0, 4, 64, rng));
const handle = (w as unknown as { handle: object }).handle;

test('matmul rejects short buffers, wrong types, aliasing and non-weights', () => {
  assert.throws(() => native.matmul(new Float32Array(8), new Float32Array(64 * 2 - 1), 2, w), RangeError);
  assert.throws(() => native.matmul(new Float32Array(7), new Float32Array(128), 2, w), RangeError);
  assert.throws(() => addon.matmul(new Float32Array(8), new Float64Array(128) as unknown as Float32Array, 2, handle as never), TypeError);
  assert.throws(() => addon.matmul(new Float32Array(8), new Float32Array(128), -1, handle as never), RangeError);
  assert.throws(() => addon.matmul(new Float32Array(8), new Float32Array(128), 1.5, handle as never), RangeError);
  assert.throws(() => addon.matmul(new Float32Array(8), new Float32Array(128), 2, {} as never), TypeError);
  // Another native object in place of a weight (type tags, not just prototypes, are checked).
  const file = new addon.ModelFile(bundledModel);
  const close = file.close.bind(file);
  Object.setPrototypeOf(file, Object.getPrototypeOf(handle));
  assert.throws(() => addon.matmul(new Float32Array(8), new Float32Array(128), 2, file as never), TypeError);
  close();
  const shared = new Float32Array(1024);
  assert.throws(() => addon.matmul(shared.subarray(0, 8), shared.subarray(4, 132), 2, handle as never), RangeError);
});

test('weights: unknown types, bad shapes and out-of-bounds views are refused', () => {
  const bytes = new Uint8Array(1024);
  assert.throws(() => new addon.WeightTensor(bytes, 0, 9 /* Q8_1 */, 1, 32), TypeError);
  assert.throws(() => new addon.WeightTensor(bytes, 0, GGMLType.Q8_0, 1, 33), RangeError);
  assert.throws(() => new addon.WeightTensor(bytes, 0, GGMLType.Q5_0, 1, 48), RangeError);
  assert.throws(() => new addon.WeightTensor(bytes, 0, GGMLType.Q5_1, 64, 32), RangeError); // 1536 bytes
  assert.throws(() => new addon.WeightTensor(bytes, 0, GGMLType.F32, 1, 257), RangeError);
  assert.throws(() => new addon.WeightTensor(bytes, 1000, GGMLType.F32, 1, 8), RangeError);
  assert.throws(() => new addon.WeightTensor(bytes, 0, GGMLType.F32, 0, 8), RangeError);
  const file = new addon.ModelFile(bundledModel);
  assert.throws(() => new addon.WeightTensor(file, file.size - 16, GGMLType.F32, 1, 8), RangeError);
  assert.throws(() => new addon.WeightTensor(file, 2 ** 52, GGMLType.F32, 1, 8), RangeError);
  const view = new addon.WeightTensor(file, 0, GGMLType.F32, 1, 8);
  file.close();
  assert.throws(() => addon.toFloat32(view), /closed/);
  assert.throws(() => new addon.ModelFile('/nonexistent/model.gguf'), /cannot open/);
});

test('embed rejects ids outside the table and short outputs', () => {
  assert.throws(() => native.embed(new Float32Array(64), Int32Array.of(4), w), RangeError);
  assert.throws(() => native.embed(new Float32Array(64), Int32Array.of(-1), w), RangeError);
  assert.throws(() => native.embed(new Float32Array(63), Int32Array.of(1), w), RangeError);
});

test('element-wise ops reject short buffers and bad parameters', () => {
  const a = new Float32Array(10);
  assert.throws(() => native.rmsnorm(a, a, new Float32Array(4), 2, 5, 1e-5), RangeError);
  assert.throws(() => native.rmsnorm(a, new Float32Array(9), new Float32Array(5), 2, 5, 1e-5), RangeError);
  assert.throws(() => native.swiglu(a, a, new Float32Array(9), 10), RangeError);
  assert.throws(() => native.add(a, new Float32Array(9), 10), RangeError);
  assert.throws(() => native.addBias(a, new Float32Array(4), 3), RangeError);
  const rope = { nHeads: 1, headDim: 4, ropeDim: 4, freqBase: 10000, freqScale: 1, mode: 'normal' as const };
  assert.throws(() => native.rope(new Float32Array(7), Int32Array.of(0, 1), rope), RangeError);
  assert.throws(() => native.rope(new Float32Array(8), Int32Array.of(0, 1), { ...rope, ropeDim: 3 }), RangeError);
  assert.throws(() => native.rope(new Float32Array(8), Int32Array.of(0, -1), rope), RangeError);
  assert.throws(() => native.rope(new Float32Array(8), Int32Array.of(0, 1), { ...rope, freqFactors: Float32Array.of(1) }), /freqFactors has 1 elements/);
  assert.throws(() => native.rope(new Float32Array(8), Int32Array.of(0, 1), { ...rope, freqFactors: Float32Array.of(1, 0) }), /freqFactors\[1\] must be a positive/);
  assert.throws(() => native.rope(new Float32Array(8), Int32Array.of(0, 1), { ...rope, attnFactor: NaN }), /attnFactor/);
});

test('kvStore and attention reject out-of-range slots and positions and mismatched shapes', () => {
  const kv = new ArrayKV(1, 2, 16, 2, 4);
  const row = new Float32Array(8);
  const shape = { nHeads: 4, nKVHeads: 2, headDim: 4, scale: 0.5 };
  assert.throws(() => native.kvStore(kv, 0, row, row, Int32Array.of(2), Int32Array.of(0)), RangeError);
  assert.throws(() => native.kvStore(kv, 0, row, row, Int32Array.of(0), Int32Array.of(16)), RangeError);
  assert.throws(() => native.kvStore(kv, 0, row, row, Int32Array.of(0, 1), Int32Array.of(0)), RangeError);
  assert.throws(() => native.kvStore(kv, 0, row.subarray(0, 7), row, Int32Array.of(0), Int32Array.of(0)), RangeError);
  const q = new Float32Array(16), out = new Float32Array(16);
  assert.throws(() => native.attention(out, q, kv, 0, Int32Array.of(-1), Int32Array.of(0), shape), RangeError);
  assert.throws(() => native.attention(out, q, kv, 0, Int32Array.of(0), Int32Array.of(99), shape), RangeError);
  assert.throws(() => native.attention(out, q, kv, 0, Int32Array.of(0), Int32Array.of(0), { ...shape, nHeads: 3 }), RangeError);
  assert.throws(() => native.attention(out, q.subarray(0, 15), kv, 0, Int32Array.of(0), Int32Array.of(0), shape), RangeError);
  assert.throws(() => native.attention(out, q, kv, 0, Int32Array.of(0), Int32Array.of(0), { ...shape, headDim: 8 }), RangeError);
  assert.throws(() => addon.attention(out, q, kv.keys(0).subarray(1), kv.values(0), 2, 16, 2, 4, kv.keyFormat.id, kv.valueFormat.id, kv.rowBytes, 0, kv.rowsPerPage, kv.pageBytes, new Uint8Array(0), new Uint8Array(0), 0, 1, 0, new Int32Array(0), new Int32Array(0), Int32Array.of(0), Int32Array.of(0), 4, 0.5, 0, 0), RangeError);
});
