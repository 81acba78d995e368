// Q2_K, Q3_K, Q5_K and IQ4_XS on the native backend against the reference (plain-TS dequantization,
// float64 dots) on every ISA: matmul at decode and small batches (n = 1, 3, 17; weight rows that are not
// multiples of 16; 1, 2 and 9 super-blocks per row), matmulMany mixing them with Q4_K / Q6_K, embed and
// toFloat32, and quants at the ends of their ranges.
//
// Tolerances, as for Q4_K / Q6_K (matmul-kquant.test.ts), on max |native - expected| / (|x row| * |w row|):
// - 1e-2 against the reference on the f32 activations: the int8 activation rounding alone is bounded
//   by about sqrt(3) / 254 = 6.8e-3 of that norm product for these uniform activations.
// - 1e-5 against the reference on the activations rounded as llama.cpp's Q8_K rounds them: what
//   is left is f32 rounding of scale products and addition order; a wrong scale, min or bit anywhere
//   is far above it.
// embed and toFloat32 are exact: every product of an f16 scale, a 6-bit scale and a quant is exact in
// f32 on both sides, so both round the same exact difference once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GGMLType, typeName, typeTraits } from '../../src/model/gguf/types.js';
import { compareIntMatmul, forEachIsa, halfBits, matmulError, native, randomWeightBytes, QUANTIZATION_TOLERANCE, reference, Rng, wideRangeActivations } from './helpers.js';

const SUPERBLOCK_TYPES = [GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q5_K, GGMLType.IQ4_XS];



for (const type of SUPERBLOCK_TYPES) {
  test(`matmul ${typeName(type)} (int8 activations) matches the reference on every ISA, decode and small batches`, () => {
    const rng = new Rng(5000 + type);
    for (const cols of [256, 512, 2048 + 256]) {
      for (const [rows, n] of [[1, 1], [7, 1], [37, 1], [19, 3], [5, 3], [33, 17], [21, 17]] as const) {
        compareIntMatmul(type, rows, cols, n, rng.floats(n * cols), randomWeightBytes(type, rows, cols, rng));
      }
    }
  });

  test(`matmul ${typeName(type)} on a prefill-sized batch with a wide activation range`, () => {
    const rng = new Rng(5100 + type);
    const rows = 45, cols = 512, n = 40;
    const x = wideRangeActivations(rng, n, cols);
    compareIntMatmul(type, rows, cols, n, x, randomWeightBytes(type, rows, cols, rng));
  });

  test(`${typeName(type)} toFloat32 and embed dequantize exactly like the reference`, () => {
    const rng = new Rng(5200 + type);
    const rows = 13, cols = 768;
    const bytes = randomWeightBytes(type, rows, cols, rng);
    const wr = reference.createWeight('t', type, rows, cols, bytes);
    const wn = native.createWeight('t', type, rows, cols, bytes);
    assert.deepEqual(native.toFloat32(wn), reference.toFloat32(wr));
    const ids = Int32Array.from([0, 12, 5, 5, 7]);
    const want = new Float32Array(ids.length * cols), got = new Float32Array(ids.length * cols);
    reference.embed(want, ids, wr);
    native.embed(got, ids, wn);
    assert.deepEqual(got, want);
  });
}

test('matmulMany mixing Q2_K / Q3_K / Q5_K / IQ4_XS / Q4_K / Q6_K matches the reference and matmul on every ISA', () => {
  const rng = new Rng(5300);
  const cases: [GGMLType[], number[], number, number][] = [
    [[GGMLType.Q5_K, GGMLType.Q5_K, GGMLType.Q6_K], [64, 16, 17], 512, 1], // q/k/v as in Q5_K_M
    [[GGMLType.Q3_K, GGMLType.Q3_K, GGMLType.Q5_K], [35, 16, 9], 256, 3], // q/k/v as in Q3_K_M
    [[GGMLType.Q2_K, GGMLType.Q4_K, GGMLType.IQ4_XS], [21, 37, 16], 768, 17],
    [[GGMLType.IQ4_XS, GGMLType.IQ4_XS], [300, 40], 256, 2], // enough work for the pool
  ];
  for (const [types, rowsList, cols, n] of cases) {
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
        assert.ok(err <= QUANTIZATION_TOLERANCE, `${isa} ${label}, weight ${i}: error ${err}`);
        const single = new Float32Array(n * rows);
        native.matmul(single, x, n, wn[i]!);
        assert.deepEqual(got[i], single, `${isa} ${label}, weight ${i} differs from matmul`);
      });
    });
  }
});

test('Q2_K / Q3_K / Q5_K / IQ4_XS matmuls at the ends of the quant and scale ranges do not overflow', () => {
  const cols = 512;
  // 6 rows: row kernels only; 22: a packed group (where the ISA packs) and a tail.
  for (const [type, rows] of SUPERBLOCK_TYPES.flatMap((t) => [[t, 6], [t, 22]] as const)) {
    const blockBytes = typeTraits(type)!.typeSize;
    for (const fill of [0xff, 0x00, 0x55]) {
      // Every quant, scale and min at its largest (0xff), smallest (0x00) or a mixed pattern; small d.
      const bytes = new Uint8Array(rows * (cols / 256) * blockBytes).fill(fill);
      for (let o = 0; o < bytes.length; o += blockBytes) {
        const view = new DataView(bytes.buffer, o, blockBytes);
        if (type === GGMLType.Q2_K) {
          view.setUint16(80, halfBits(0.01), true);
          view.setUint16(82, halfBits(0.02), true);
        } else if (type === GGMLType.Q3_K) {
          view.setUint16(108, halfBits(0.001), true);
        } else if (type === GGMLType.Q5_K) {
          view.setUint16(0, halfBits(0.01), true);
          view.setUint16(2, halfBits(0.02), true);
        } else {
          view.setUint16(0, halfBits(0.0001), true);
        }
      }
      for (const pattern of ['ones', 'alternating'] as const) {
        const x = new Float32Array(3 * cols).map((_, i) => (pattern === 'ones' || i % 2 === 0 ? 1 : -1) * (i < cols ? 1 : -2));
        compareIntMatmul(type, rows, cols, 3, x, bytes);
      }
    }
  }
});
