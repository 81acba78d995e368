// Q4_1, Q5_0, Q5_1 and IQ4_NL integer-dot matmuls (activations quantized to int8 blocks of 32 as
// llama.cpp's Q8_0 / Q8_1, as for Q4_0) against the reference backend (f32 dequantized weights, float64 dot) on every ISA: decode and
// small batches (n = 1, 3, 17), rows that are not multiples of the kernels' tiles or of 16, and row
// lengths of odd block counts (the AVX-512 kernels take blocks in pairs and the last one alone).
//
// Two checks per case, on max over outputs of |native - expected| / (|x row| * |w row|) (matmulError):
// - Against the reference on the f32 activations: 1e-2. Each activation moves by at most
//   d_x/2 = amax/254 of its block, so |error| <= |w| * |e| <= |w| * sqrt(cols) * amax / 254, and for these
//   uniform activations |x| is about sqrt(cols / 3) * amax: a bound of about sqrt(3) / 254 = 6.8e-3,
//   plus sqrt(3) / 2048 = 8.5e-4 for the scale's rounding to a half.
// - Against the reference on the activations rounded exactly as the native quantization rounds them:
//   1e-5, f32 rounding of the scale products and of the order of additions. A wrong quant, high bit,
//   grid value or min anywhere shows up far above that.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GGMLType, typeName, typeTraits } from '../../src/model/gguf/types.js';
import { checkPackedAgainstRowKernel, compareIntMatmul, forEachIsa, halfBits, matmulError, native, randomWeightBytes, QUANTIZATION_TOLERANCE, reference, Rng, wideRangeActivations } from './helpers.js';

// The ISAs whose kernel set packs IQ4_NL weights 16 rows at a time (packed_weights.h).
const PACKED_IQ4_NL_ISAS = new Set(['avx2', 'avx512', 'avx512-amx']);
// Those that pack Q5_0, Q4_1 and Q5_1 weights (AVX2 and AVX-512, which the AMX sets reuse for them).
const PACKED_NIBBLE_ISAS = new Set(['avx2', 'avx512', 'avx512-amx', 'avx512-amx-bf16']);

const BLOCK32_TYPES = [GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL];


for (const type of BLOCK32_TYPES) {
  test(`matmul ${typeName(type)} (int8 activations) matches the reference on every ISA, decode and small batches`, () => {
    const rng = new Rng(4000 + type);
    for (const cols of [32, 96, 160, 512, 2080]) {
      for (const [rows, n] of [[1, 1], [7, 1], [37, 1], [19, 3], [5, 3], [33, 17], [21, 17]] as const) {
        compareIntMatmul(type, rows, cols, n, rng.floats(n * cols), randomWeightBytes(type, rows, cols, rng));
      }
    }
  });

  test(`matmul ${typeName(type)} on a prefill-sized batch with a wide activation range`, () => {
    const rng = new Rng(4100 + type);
    const rows = 45, cols = 320, n = 40;
    // Rows of very different magnitudes, and all-zero blocks (activation scale 0).
    const x = wideRangeActivations(rng, n, cols);
    compareIntMatmul(type, rows, cols, n, x, randomWeightBytes(type, rows, cols, rng));
  });
}

test('Q4_1 / Q5_0 / Q5_1 / IQ4_NL matmuls at the extremes of the quant ranges do not overflow', () => {
  const cols = 160;
  // 6 rows: row kernels only; 22: a packed group (IQ4_NL, where the ISA packs) and a tail.
  for (const [type, rows] of BLOCK32_TYPES.flatMap((t) => [[t, 6], [t, 22]] as const)) {
    const blockBytes = typeTraits(type)!.typeSize;
    for (const quants of [0x00, 0xff]) {
      // Every nibble and high bit 0 or all 1 (the smallest or largest value: IQ4_NL -127 or 113, Q5 0 or 31),
      // the last row alternating; d and m large enough that the min matters.
      const bytes = new Uint8Array(rows * (cols / 32) * blockBytes).fill(quants);
      for (let o = 0; o < bytes.length; o += blockBytes) {
        const view = new DataView(bytes.buffer, o, blockBytes);
        view.setUint16(0, halfBits(0.01), true);
        if (type === GGMLType.Q4_1 || type === GGMLType.Q5_1) view.setUint16(2, halfBits(-0.1), true);
        if (o >= (rows - 1) * (cols / 32) * blockBytes) bytes.fill(0x5a, o + blockBytes - 16, o + blockBytes);
      }
      for (const pattern of ['ones', 'alternating'] as const) {
        const x = new Float32Array(3 * cols).map((_, i) => (pattern === 'ones' || i % 2 === 0 ? 1 : -1) * (i < cols ? 1 : -2));
        compareIntMatmul(type, rows, cols, 3, x, bytes);
      }
    }
  }
});

test('matmulMany on Q4_1 / Q5_0 / Q5_1 / IQ4_NL (one quantization of x) matches matmul on every ISA', () => {
  const rng = new Rng(4200);
  const cols = 224;
  for (const [types, n] of [
    [[GGMLType.Q5_0, GGMLType.Q5_0, GGMLType.Q5_0], 1],
    [[GGMLType.Q4_1, GGMLType.Q5_1, GGMLType.IQ4_NL, GGMLType.Q5_0], 3],
    [[GGMLType.IQ4_NL, GGMLType.Q4_0, GGMLType.Q5_1], 17], // mixed with Q4_0: per weight
    [[GGMLType.IQ4_NL, GGMLType.IQ4_NL], 2], // both packed where the ISA packs: one job
    [[GGMLType.Q5_0, GGMLType.IQ4_NL], 3], // a packed IQ4_NL next to another type: per weight
  ] as const) {
    const rowsList = types.map((_, i) => [37, 16, 5, 300][i]!);
    const bytes = types.map((t, i) => randomWeightBytes(t, rowsList[i]!, cols, rng));
    const wr = types.map((t, i) => reference.createWeight(`w${i}`, t, rowsList[i]!, cols, bytes[i]!));
    const wn = types.map((t, i) => native.createWeight(`w${i}`, t, rowsList[i]!, cols, bytes[i]!));
    const x = rng.floats(n * cols);
    const want = rowsList.map((rows) => new Float32Array(n * rows));
    reference.matmulMany(want, x, n, wr);
    forEachIsa((isa) => {
      const got = rowsList.map((rows) => new Float32Array(n * rows));
      native.matmulMany(got, x, n, wn);
      rowsList.forEach((rows, i) => {
        const label = `${isa} ${types.map(typeName).join('+')} n=${n}, weight ${i}`;
        const err = matmulError(got[i]!, want[i]!, x, reference.toFloat32(wr[i]!), n, rows, cols);
        assert.ok(err <= QUANTIZATION_TOLERANCE, `${label}: error ${err}`);
        const single = new Float32Array(n * rows);
        native.matmul(single, x, n, wn[i]!);
        assert.deepEqual(got[i], single, `${label} differs from matmul`);
      });
    });
  }
});

// IQ4_NL weights with whole 16-row groups take the packed kernel where the ISA has one: checked against
// the reference and against the row kernel alone (checkPackedAgainstRowKernel).
test('IQ4_NL matmuls on whole 16-row groups (packed kernel) match the reference and the row kernel', () => {
  checkPackedAgainstRowKernel(GGMLType.IQ4_NL, [32, 96, 2080], 32, PACKED_IQ4_NL_ISAS, new Rng(4300));
});

// The same for Q5_0, whose packed form adds the fifth bits as byte masks, and Q4_1 / Q5_1, whose packed
// form also carries the mins.
for (const [type, seed] of [[GGMLType.Q5_0, 4400], [GGMLType.Q4_1, 4500], [GGMLType.Q5_1, 4600]] as const) {
  test(`${typeName(type)} matmuls on whole 16-row groups (packed kernel) match the reference and the row kernel`, () => {
    checkPackedAgainstRowKernel(type, [32, 96, 2080], 32, PACKED_NIBBLE_ISAS, new Rng(seed));
  });
}
