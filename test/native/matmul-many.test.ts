// matmulMany (several weights sharing one input, as q/k/v and gate/up do) against the reference and
// against one native matmul per weight, on every ISA: the fused packed path (Q8_0, Q4_0 with whole
// 16-row groups, tails and small matrices), the shared K-quant path (Q4_K and Q6_K, mixed too), and the
// per-weight fallback (mixed types, float weights).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Weight } from '../../src/backend/backend.js';
import { GGMLType, typeName } from '../../src/model/gguf/types.js';
import { forEachIsa, matmulError, native, randomWeightBytes, reference, Rng } from './helpers.js';

// As matmul.test.ts: int8 activations for the quantized types.
const TOLERANCE: Partial<Record<GGMLType, number>> = {
  [GGMLType.Q8_0]: 1e-2,
  [GGMLType.Q4_0]: 1e-2,
  [GGMLType.Q4_K]: 1e-2,
  [GGMLType.Q6_K]: 1e-2,
  [GGMLType.F16]: 1e-5,
};

function compareMany(types: GGMLType[], rowsList: number[], cols: number, n: number, rng: Rng): void {
  const bytes = rowsList.map((rows, i) => randomWeightBytes(types[i]!, rows, cols, rng));
  const wr = rowsList.map((rows, i) => reference.createWeight(`w${i}`, types[i]!, rows, cols, bytes[i]!));
  const wn = rowsList.map((rows, i) => native.createWeight(`w${i}`, types[i]!, rows, cols, bytes[i]!));
  const x = rng.floats(n * cols);
  const want = rowsList.map((rows) => new Float32Array(n * rows));
  reference.matmulMany(want, x, n, wr);
  const label = `${types.map(typeName).join('+')} rows=${rowsList.join('+')} cols=${cols} n=${n}`;
  forEachIsa((isa) => {
    const got = rowsList.map((rows) => new Float32Array(n * rows));
    native.matmulMany(got, x, n, wn);
    rowsList.forEach((rows, i) => {
      const err = matmulError(got[i]!, want[i]!, x, reference.toFloat32(wr[i]!), n, rows, cols);
      assert.ok(err <= TOLERANCE[types[i]!]!, `${isa} ${label}, weight ${i}: error ${err}`);
      // Same kernels and the same activation quantization as a lone matmul: identical results.
      const single = new Float32Array(n * rows);
      native.matmul(single, x, n, wn[i]!);
      assert.deepEqual(got[i], single, `${isa} ${label}, weight ${i} differs from matmul`);
    });
  });
}

for (const type of [GGMLType.Q8_0, GGMLType.Q4_0]) {
  test(`matmulMany ${typeName(type)} matches the reference and matmul on every ISA`, () => {
    const rng = new Rng(2000 + type);
    compareMany([type, type, type], [64, 16, 16], 256, 1, rng); // q/k/v-like: whole groups
    compareMany([type, type, type], [35, 19, 5], 96, 3, rng); // tails, and a weight with no whole group
    compareMany([type, type], [48, 48], 160, 7, rng); // gate/up-like, prefill-sized batch
    compareMany([type], [33], 32, 2, rng);
  });
}

test('matmulMany Q4_K / Q6_K (one quantization of x for all) matches the reference and matmul on every ISA', () => {
  const rng = new Rng(2100);
  compareMany([GGMLType.Q4_K, GGMLType.Q4_K, GGMLType.Q6_K], [64, 16, 17], 512, 1, rng); // q/k/v as in Q4_K_M
  compareMany([GGMLType.Q4_K, GGMLType.Q4_K], [40, 40], 256, 7, rng); // gate/up, prefill-sized batch
  compareMany([GGMLType.Q6_K], [300], 256, 2, rng); // enough work for the pool
  compareMany([GGMLType.Q4_K, GGMLType.Q6_K, GGMLType.Q4_K], [35, 16, 83], 768, 4, rng); // packed Q4_K groups and tails
  compareMany([GGMLType.Q4_K, GGMLType.Q8_0], [9, 16], 256, 3, rng); // mixed with a non-K-quant: per weight
});

test('matmulMany with mixed or float weights falls back to one matmul per weight', () => {
  const rng = new Rng(21);
  compareMany([GGMLType.Q8_0, GGMLType.Q4_0], [32, 17], 128, 2, rng);
  compareMany([GGMLType.F16, GGMLType.Q8_0, GGMLType.F16], [7, 16, 3], 64, 5, rng);
});

test('matmulMany rejects mismatched weights and overlapping outputs on both backends', () => {
  const rng = new Rng(5);
  const make = (b: typeof native | typeof reference, rows: number, cols: number): Weight =>
    b.createWeight('w', GGMLType.Q8_0, rows, cols, randomWeightBytes(GGMLType.Q8_0, rows, cols, new Rng(rows * cols)));
  const x = rng.floats(64);
  for (const b of [native, reference]) {
    assert.throws(() => b.matmulMany([new Float32Array(16), new Float32Array(16)], x, 1, [make(b, 16, 64), make(b, 16, 32)]), RangeError);
    assert.throws(() => b.matmulMany([new Float32Array(16)], x, 1, [make(b, 16, 64), make(b, 16, 64)]), RangeError);
  }
  const shared = new Float32Array(32);
  assert.throws(() => native.matmulMany([shared.subarray(0, 16), shared.subarray(8, 24)], x, 1, [make(native, 16, 64), make(native, 16, 64)]), RangeError);
  assert.throws(() => native.matmulMany([new Float32Array(8)], x, 1, [make(native, 16, 64)]), RangeError);
});
