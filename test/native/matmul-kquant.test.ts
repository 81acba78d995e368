// Q4_K and Q6_K integer-dot matmuls (activations quantized to int8 as llama.cpp's Q8_K, one scale per
// 256 values, KQuantRows) against
// the reference backend on every ISA: decode (1 activation row) and small batches, row lengths of 1, 2
// and 9 super-blocks, weight-row counts that are not multiples of the kernels' tiles.
//
// Two checks per case, on max over outputs of |native - expected| / (|x row| * |w row|) (matmulError):
// - Against the reference on the f32 activations: 1e-2, as for Q8_0 / Q4_0 (matmul.test.ts). Each
//   activation moves by at most d/2 = amax/254 of its super-block of 256, so |error| <= |w| * |e| <=
//   |w| * sqrt(cols) * amax / 254; for these uniform activations |x| is about sqrt(cols / 3) * amax,
//   so the bound is about sqrt(3) / 254 = 6.8e-3. Seen: up to 5e-4 (the rounding errors mostly cancel).
// - Against the reference on the activations rounded exactly as llama.cpp's Q8_K rounds them
//   (llama-activation-quant.ts; activation-quant.test.ts checks native's bytes equal those): 1e-5, as for the float kernels. What is left
//   is f32 rounding of the scale products and the order of the f32 additions; a wrong sub-block scale,
//   min or offset anywhere shows up far above that.
import { test } from 'node:test';
import { GGMLType, typeName, typeTraits } from '../../src/model/gguf/types.js';
import { checkPackedAgainstRowKernel, compareIntMatmul, halfBits, matmulError, native, randomWeightBytes, reference, Rng, wideRangeActivations } from './helpers.js';

// The ISAs whose kernel set packs each type's weights 16 rows at a time (packed_weights.h).
const PACKING_ISAS: Partial<Record<GGMLType, ReadonlySet<string>>> = {
  [GGMLType.Q4_K]: new Set(['avx2', 'avx512', 'avx512-amx']),
  [GGMLType.Q6_K]: new Set(['avx2', 'avx512', 'avx512-amx']),
  [GGMLType.IQ4_XS]: new Set(['avx2', 'avx512', 'avx512-amx']),
  [GGMLType.Q5_K]: new Set(['avx2', 'avx512', 'avx512-amx']),
  [GGMLType.Q3_K]: new Set(['avx2', 'avx512', 'avx512-amx']),
  [GGMLType.Q2_K]: new Set(['avx2', 'avx512', 'avx512-amx']),
};

const KQUANTS = [GGMLType.Q4_K, GGMLType.Q6_K];
// The 256-value types with a packed kernel (Q3_K's, Q5_K's and IQ4_XS's row kernels are tested in matmul-superblock.test.ts).
const PACKED_KQUANTS = [GGMLType.Q4_K, GGMLType.Q6_K, GGMLType.IQ4_XS, GGMLType.Q5_K, GGMLType.Q3_K, GGMLType.Q2_K];


for (const type of KQUANTS) {
  test(`matmul ${typeName(type)} (int8 activations) matches the reference on every ISA, decode and small batches`, () => {
    const rng = new Rng(3000 + type);
    for (const cols of [256, 512, 2048 + 256]) {
      for (const [rows, n] of [[1, 1], [7, 1], [37, 1], [19, 2], [5, 3], [33, 5], [21, 17]] as const) {
        compareIntMatmul(type, rows, cols, n, rng.floats(n * cols), randomWeightBytes(type, rows, cols, rng));
      }
    }
  });

  test(`matmul ${typeName(type)} on a prefill-sized batch with a wide activation range`, () => {
    const rng = new Rng(3100 + type);
    const rows = 45, cols = 512, n = 40;
    // Rows of very different magnitudes, and all-zero blocks (scale 0).
    const x = wideRangeActivations(rng, n, cols);
    compareIntMatmul(type, rows, cols, n, x, randomWeightBytes(type, rows, cols, rng));
  });
}

test('Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS matmuls at the extremes of the quant ranges do not overflow', () => {
  const cols = 512;
  // 6 rows: row kernels only; 22: a packed group and a tail.
  for (const [type, rows] of PACKED_KQUANTS.flatMap((t) => [[t, 6], [t, 22]] as const)) {
    const blockBytes = typeTraits(type)!.typeSize;
    const bytes = new Uint8Array(rows * (cols / 256) * blockBytes).fill(0xff);
    for (let o = 0; o < bytes.length; o += blockBytes) {
      const view = new DataView(bytes.buffer, o, blockBytes);
      const lastRow = o >= (rows - 1) * (cols / 256) * blockBytes;
      if (type === GGMLType.Q4_K || type === GGMLType.Q5_K) {
        // Every scale and min 63, every quant 15 (Q5_K: 31); the last row's quants 0 (value -dmin * min).
        view.setUint16(0, halfBits(0.01), true);
        view.setUint16(2, halfBits(0.02), true);
        if (lastRow) bytes.fill(0, o + 16, o + blockBytes);
      } else if (type === GGMLType.Q6_K) {
        // Every quant 63 (value +31), scales -128 and 127 alternating.
        for (let j = 0; j < 16; j++) view.setInt8(192 + j, j % 2 === 0 ? -128 : 127);
        view.setUint16(208, halfBits(0.001), true);
      } else if (type === GGMLType.Q3_K) {
        // Every scale 31 and value +3; the last row's hmask and quants 0 (value -4).
        view.setUint16(108, halfBits(0.01), true);
        if (lastRow) bytes.fill(0, o, o + 96);
      } else if (type === GGMLType.Q2_K) {
        // Every scale and min 15 and every quant 3; the last row's quants 0 (value -dmin * min).
        view.setUint16(80, halfBits(0.01), true);
        view.setUint16(82, halfBits(0.02), true);
        if (lastRow) bytes.fill(0, o + 16, o + 80);
      } else {
        // IQ4_XS: every scale 31 and every value the codebook's -127, the largest magnitude.
        view.setUint16(0, halfBits(0.001), true);
        bytes.fill(0, o + 8, o + blockBytes);
      }
    }
    for (const pattern of ['ones', 'alternating'] as const) {
      const x = new Float32Array(3 * cols).map((_, i) => (pattern === 'ones' || i % 2 === 0 ? 1 : -1) * (i < cols ? 1 : -2));
      compareIntMatmul(type, rows, cols, 3, x, bytes);
    }
  }
});

// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS weights with whole 16-row groups take the packed kernel where the ISA has one:
// checked against the reference and against the row kernel alone (checkPackedAgainstRowKernel).
for (const type of PACKED_KQUANTS) {
  test(`${typeName(type)} matmuls on whole 16-row groups (packed kernel) match the reference and the row kernel`, () => {
    checkPackedAgainstRowKernel(type, [256, 768, 2304], 256, PACKING_ISAS[type]!, new Rng(3200 + 100 * PACKED_KQUANTS.indexOf(type)));
  });
}
