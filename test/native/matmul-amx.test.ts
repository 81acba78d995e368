// The AMX-INT8 tile kernels of the avx512-amx kernel set (native/isa/amx_packed_kernels.cc) against the
// AVX-512 packed kernels they replace for 16 and more activation rows, and against the reference.
//
// Both kernels sum each block's int8 products exactly in int32 and then add the scaled block sums in
// f32, so they differ only by f32 rounding: the order of those additions, and where an offset (Q4_K's
// mins, Q6_K's -32 and Q3_K's -4, the packed bias) is taken out. The tolerance is ARITHMETIC_TOLERANCE (1e-5) on
// matmulError, i.e. relative to |x row| * |w row|; a wrong scale, offset or row anywhere is far above it.
// Row counts: 16 (one tile), 17 and 31 (a tile plus rows for the AVX-512 kernel), 64 (two pairs of
// tiles; rows of very different magnitudes, one all zero), 130 (pairs, a lone tile and 2 rows); weight rows: odd numbers of 16-row groups, with and
// without tail rows past the last group, on the default threads and on one: there the 405-row weight
// (25 groups) runs as calls of 8, 8, 8 and 1 groups (matmul.cc planPacked), so both ways the kernel
// reads activations (copied tile by tile from 8 groups on, in place below) are taken.
//
// Where the CPU (or the OS) offers no AMX the set does not exist and these tests skip, saying so.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GGMLType, typeName } from '../../src/model/gguf/types.js';
import { addon, ARITHMETIC_TOLERANCE, compareIntMatmul, isas, matmulError, native, randomWeightBytes, reference, Rng, wideRangeActivations } from './helpers.js';

const AMX = 'avx512-amx';
const skip = isas.includes(AMX) ? false : `no AMX-INT8 on this CPU/OS (usable kernel sets: ${isas.join(', ')})`;

// Every type the avx512-amx set has tile kernels for, with row lengths of a few blocks / super-blocks.
const TYPES: readonly (readonly [GGMLType, readonly number[]])[] = [
  [GGMLType.Q8_0, [96, 512]],
  [GGMLType.Q4_0, [96, 512]],
  [GGMLType.IQ4_NL, [96, 512]],
  [GGMLType.Q3_K, [256, 768]],
  [GGMLType.Q4_K, [256, 768]],
  [GGMLType.Q5_K, [256, 768]],
  [GGMLType.Q6_K, [256, 768]],
  [GGMLType.IQ4_XS, [256, 768]],
];

function matmulOn(isa: string, x: Float32Array, n: number, w: ReturnType<typeof native.createWeight>, rows: number): Float32Array {
  addon.selectIsa(isa);
  const out = new Float32Array(n * rows);
  native.matmul(out, x, n, w);
  return out;
}

for (const [type, colsList] of TYPES) {
  test(`avx512-amx ${typeName(type)} matmuls equal the AVX-512 packed kernel's on prefill batches`, { skip }, () => {
    const rng = new Rng(7100 + type);
    const before = addon.isa();
    try {
      for (const cols of colsList) {
        for (const [threads, rows] of [[0, 48], [0, 85], [1, 405]] as const) {
          addon.setThreads(threads);
          const bytes = randomWeightBytes(type, rows, cols, rng);
          const w = native.createWeight('w', type, rows, cols, bytes);
          const wf = reference.toFloat32(reference.createWeight('w', type, rows, cols, bytes));
          for (const n of [16, 17, 31, 64, 130]) {
            const x = n === 64 ? wideRangeActivations(rng, n, cols) : rng.floats(n * cols);
            // An all-zero row: its super-blocks' activation scale is 0 (the K-quant kernels take offsets in
            // units of it).
            if (n === 64) x.fill(0, 5 * cols, 6 * cols);
            const want = matmulOn('avx512', x, n, w, rows);
            const got = matmulOn(AMX, x, n, w, rows);
            const err = matmulError(got, want, x, wf, n, rows, cols);
            assert.ok(err <= ARITHMETIC_TOLERANCE, `${typeName(type)} n=${n} rows=${rows} cols=${cols} threads=${threads}: error ${err} against avx512`);
          }
        }
      }
    } finally {
      addon.setThreads(0);
      addon.selectIsa(before);
    }
  });

  test(`avx512-amx ${typeName(type)} matmuls match the reference`, { skip }, () => {
    // compareIntMatmul runs every ISA, avx512-amx among them, against the reference's own dequantization.
    const rng = new Rng(7200 + type);
    const cols = colsList[colsList.length - 1]!;
    for (const [rows, n] of [[48, 16], [37, 33]] as const) {
      compareIntMatmul(type, rows, cols, n, rng.floats(n * cols), randomWeightBytes(type, rows, cols, rng));
    }
  });
}

test('avx512-amx is offered exactly where AMX is, and can be selected and left', () => {
  const before = addon.isa();
  if (!isas.includes(AMX)) {
    assert.throws(() => addon.selectIsa(AMX), /not available/);
    return;
  }
  // The best set on an AMX CPU, unless it also has AMX-BF16 (matmul-amx-bf16.test.ts).
  assert.ok(isas.at(-1) === AMX || (isas.at(-1) === 'avx512-amx-bf16' && isas.at(-2) === AMX), isas.join(', '));
  try {
    addon.selectIsa(AMX);
    assert.equal(addon.isa(), AMX);
    addon.selectIsa('avx512');
    assert.equal(addon.isa(), 'avx512');
  } finally {
    addon.selectIsa(before);
  }
});
