// Native matmul against the reference backend: every weight type, every ISA path on this machine,
// decode-sized and prefill-sized batches, odd row counts and (where the block size allows) odd
// row lengths.
//
// Tolerances, on max over outputs of |native - reference| / (|x row| * |w row|) (see matmulError):
// - F32, F16, BF16: 1e-5. The weights are exact in f32 on both sides; only the order of the f32
//   additions differs.
// - Q8_0, Q4_0, Q4_K, Q6_K: 1e-2. The native kernels quantize the activations to int8 as llama.cpp does
//   (per block of 32 with a half scale for Q8_0 / Q4_0, per 256 values for the K-quants); each
//   activation's rounding error is about 1/254 of its block's largest value (matmul-kquant.test.ts derives the bound and checks the K-quant arithmetic more tightly).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GGMLType, typeName } from '../../src/model/gguf/types.js';
import { forEachIsa, matmulError, native, randomWeightBytes, reference, Rng } from './helpers.js';

const TOLERANCE: Partial<Record<GGMLType, number>> = {
  [GGMLType.F32]: 1e-5,
  [GGMLType.F16]: 1e-5,
  [GGMLType.BF16]: 1e-5,
  [GGMLType.Q8_0]: 1e-2,
  [GGMLType.Q4_0]: 1e-2,
  [GGMLType.Q4_K]: 1e-2,
  [GGMLType.Q6_K]: 1e-2,
};

/** Row lengths per type: odd ones where the block size allows, several blocks, an odd block count. */
function colsFor(type: GGMLType): number[] {
  switch (type) {
    case GGMLType.F32: case GGMLType.F16: case GGMLType.BF16: return [1, 7, 33, 64, 100, 257];
    case GGMLType.Q8_0: case GGMLType.Q4_0: return [32, 96, 160, 512];
    default: return [256, 768];
  }
}

const ROWS = [1, 5, 19];
const BATCH = [1, 2, 3, 7, 33];

/** Compares native and reference on one random case, on every ISA. */
function compare(type: GGMLType, rows: number, cols: number, n: number, rng: Rng): void {
  const bytes = randomWeightBytes(type, rows, cols, rng);
  const wr = reference.createWeight('w', type, rows, cols, bytes);
  const wn = native.createWeight('w', type, rows, cols, bytes);
  const x = rng.floats(n * cols);
  const want = new Float32Array(n * rows);
  reference.matmul(want, x, n, wr);
  const wf = reference.toFloat32(wr);
  forEachIsa((isa) => {
    const got = new Float32Array(n * rows);
    native.matmul(got, x, n, wn);
    const err = matmulError(got, want, x, wf, n, rows, cols);
    assert.ok(err <= TOLERANCE[type]!, `${isa} ${typeName(type)} n=${n} rows=${rows} cols=${cols}: error ${err}`);
  });
}

for (const type of Object.keys(TOLERANCE).map(Number) as GGMLType[]) {
  test(`matmul ${typeName(type)} matches the reference on every ISA (tolerance ${TOLERANCE[type]})`, () => {
    const rng = new Rng(1000 + type);
    for (const cols of colsFor(type)) {
      for (const rows of ROWS) compare(type, rows, cols, BATCH[rng.int(BATCH.length)]!, rng);
    }
  });
}

test('matmul with prefill-sized batches and many rows exercises every tile shape', () => {
  const rng = new Rng(7);
  for (const type of [GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.F16, GGMLType.Q6_K]) compare(type, 70, 512, 130, rng);
});

test('Q8_0 and Q4_0 matmuls on whole 16-row groups (packed kernels), with and without a tail of rows', () => {
  const rng = new Rng(11);
  for (const type of [GGMLType.Q8_0, GGMLType.Q4_0]) {
    for (const [rows, n] of [[16, 1], [256, 1], [40, 3], [48, 6]] as const) compare(type, rows, 2048, n, rng);
  }
});

test('matmul leaves out beyond n * rows untouched and accepts longer x buffers', () => {
  const rng = new Rng(3);
  const bytes = randomWeightBytes(GGMLType.Q8_0, 4, 64, rng);
  const w = native.createWeight('w', GGMLType.Q8_0, 4, 64, bytes);
  const x = rng.floats(3 * 64);
  const out = new Float32Array(3 * 4 + 5).fill(42);
  native.matmul(out, x, 2, w);
  assert.deepEqual([...out.subarray(8)], new Array(9).fill(42));
});
