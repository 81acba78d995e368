// Native matmul against the reference backend: every weight type, every ISA path on this machine,
// decode-sized and prefill-sized batches, odd row counts and (where the block size allows) odd
// row lengths.
//
// Tolerances, on max over outputs of |native - reference| / (|x row| * |w row|) (see matmulError):
// - F32, F16, BF16: 1e-5. The weights are exact in f32 on both sides; only the order of the f32
//   additions differs. With F16 weights both sides first round the activations to f16, as llama.cpp does
//   (checked on its own below).
// - Q8_0, Q4_0, Q4_K, Q6_K: 1e-2. The native kernels quantize the activations to int8 as llama.cpp does
//   (per block of 32 with a half scale for Q8_0 / Q4_0, per 256 values for the K-quants); each
//   activation's rounding error is about 1/254 of its block's largest value (matmul-kquant.test.ts derives the bound and checks the K-quant arithmetic more tightly).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GGMLType, typeName } from '../../src/model/gguf/types.js';
import { checkPackedAgainstRowKernel, compareIntMatmul, forEachIsa, halfBits, matmulError, native, randomWeightBytes, reference, Rng } from './helpers.js';

// The ISAs whose kernel set packs Q8_0 and Q4_0 weights 16 rows at a time (packed_weights.h).
const PACKING_ISAS = new Set(['avx2', 'avx512', 'avx512-amx']);

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

test('float prefills longer than one block of columns and one chunk of activation rows', () => {
  // AVX-512 sums a float prefill 512 (f32) or 1024 (f16, bf16) columns at a time over chunks of 32 rows.
  const rng = new Rng(8);
  for (const type of [GGMLType.F32, GGMLType.F16, GGMLType.BF16]) compare(type, 13, 2100, 41, rng);
});

test('Q8_0 and Q4_0 matmuls on whole 16-row groups (packed kernels), with and without a tail of rows', () => {
  const rng = new Rng(11);
  for (const type of [GGMLType.Q8_0, GGMLType.Q4_0]) {
    for (const [rows, n] of [[16, 1], [256, 1], [40, 3], [48, 6]] as const) compare(type, rows, 2048, n, rng);
  }
});

// Whole 16-row groups take the packed kernel where the ISA has one: checked against the reference and
// against the row kernel alone (checkPackedAgainstRowKernel), with 1, 3 and 65 blocks per row.
for (const type of [GGMLType.Q8_0, GGMLType.Q4_0]) {
  test(`${typeName(type)} matmuls on whole 16-row groups (packed kernel) match the reference and the row kernel`, () => {
    checkPackedAgainstRowKernel(type, [32, 96, 2080], 32, PACKING_ISAS, new Rng(5100 + type));
  });
}

test('Q8_0 and Q4_0 matmuls at the extremes of the quant ranges do not saturate', () => {
  // Q8_0 quants -128 and 127 (stored + 128 when packed: 0 and 255), Q4_0 nibbles 0 and 15, against
  // activations of +-127 after quantization: the largest int16 pair sums the int8 dot paths can form.
  // 22 rows: a packed group and a tail of row-kernel rows.
  const rows = 22, cols = 256;
  for (const type of [GGMLType.Q8_0, GGMLType.Q4_0]) {
    const blockBytes = type === GGMLType.Q8_0 ? 34 : 18;
    const bytes = new Uint8Array(rows * (cols / 32) * blockBytes);
    for (let o = 0, b = 0; o < bytes.length; o += blockBytes, b++) {
      new DataView(bytes.buffer).setUint16(o, halfBits(0.01), true);
      // Alternating blocks of all-lowest and all-highest quants; odd rows start with the other one.
      const highest = (b + Math.floor(b / (cols / 32))) % 2 === 0;
      bytes.fill(type === GGMLType.Q8_0 ? (highest ? 0x7f : 0x80) : highest ? 0xff : 0x00, o + 2, o + blockBytes);
    }
    for (const pattern of ['ones', 'alternating'] as const) {
      const x = new Float32Array(3 * cols).map((_, i) => (pattern === 'ones' || i % 2 === 0 ? 1 : -1) * (i < cols ? 1 : -2));
      compareIntMatmul(type, rows, cols, 3, x, bytes);
    }
  }
});

test('F16 weights meet activations rounded to f16 (ties to even), on every ISA', () => {
  const cols = 40, rows = 3;
  // A weight of ones: each output is the sum of the row of activations as the kernel saw them.
  const bytes = new Uint8Array(rows * cols * 2);
  for (let i = 0; i < rows * cols; i++) new DataView(bytes.buffer).setUint16(2 * i, halfBits(1), true);
  // 1 + 2^-12 rounds to 1; 1 + 2^-11 is halfway between 1 and the next half up and goes to 1 (even);
  // 1 + 3 * 2^-11 is halfway too and goes up to 1 + 2^-9; 1 + 2^-10 is a half already.
  const cases: [number, number][] = [[1 + 2 ** -12, 1], [1 + 2 ** -11, 1], [1 + 3 * 2 ** -11, 1 + 2 ** -9], [1 + 2 ** -10, 1 + 2 ** -10]];
  forEachIsa((isa) => {
    const w = native.createWeight('w', GGMLType.F16, rows, cols, bytes);
    for (const [given, seen] of cases) {
      const out = new Float32Array(rows);
      native.matmul(out, new Float32Array(cols).fill(given), 1, w);
      for (const v of out) assert.equal(v, Math.fround(cols * seen), `${isa}: activations of ${given}`);
    }
  });
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
