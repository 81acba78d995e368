// A decode (one activation row) against packed Q8_0, Q5_0, Q4_1, Q5_1 and Q5_K weights on the AVX-512
// kernels gives llama.cpp's results to the bit (llama.cpp repacks Q4_0, IQ4_NL and Q4_K on x86, and
// vserve's tiles already sum Q4_0 and IQ4_NL as it does then). Its dot product of a row keeps eight f32 sums, sum
// k adding, per block (32 values; for the K-quants per super-block, over its eight 32-value chunks each
// times its sub-block scale), d_w * d_x times the integer dot of values 4k..4k+3 with one rounding, then
// adds ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)); the minimums go into sums of their own, added
// last. The expected values are that computation written out here, on the activations as llama.cpp
// quantizes them (llama-activation-quant.ts). Further down: the repacked Q2_K / Q4_K gemv and gemm, and
// IQ4_XS's IQ panel gemm, which llama.cpp takes for prefills of 8 rows or more.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { f16ToF32 } from '../../src/model/gguf/dequant.js';
import { GGMLType, typeName } from '../../src/model/gguf/types.js';
import { addon, forEachIsa, isas, native, randomWeightBytes, Rng } from './helpers.js';
import { llamaActivations } from './llama-activation-quant.js';
import { fusedF32 } from './llama-cpp-emulation.js';

const f32 = Math.fround;

/** Options for the tests of llama.cpp's x86 order, which only the AVX-512 kernels follow. */
const onAvx512 = isas.includes('avx512') ? {} : { skip: 'this CPU has no AVX-512 (the other kernel sets sum in their own order)' };

interface Unpacked {
  q: Int32Array;     // the value of every weight (what multiplies d)
  d: Float32Array;   // per block
  m?: Float32Array;  // per block, for the types with a minimum
}

/** A row's quants and scales from GGUF bytes. */
function unpackRow(type: GGMLType, bytes: Uint8Array, at: number, cols: number): Unpacked {
  const blocks = cols / 32;
  const q = new Int32Array(cols), d = new Float32Array(blocks), m = new Float32Array(blocks);
  const half = (o: number) => f16ToF32(bytes[o]! | (bytes[o + 1]! << 8));
  const word = (o: number) => (bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24)) >>> 0;
  for (let b = 0; b < blocks; b++) {
    if (type === GGMLType.Q8_0) {
      const o = at + b * 34;
      d[b] = half(o);
      for (let j = 0; j < 32; j++) q[b * 32 + j] = (bytes[o + 2 + j]! << 24) >> 24;
      continue;
    }
    const hasMin = type === GGMLType.Q4_1 || type === GGMLType.Q5_1;
    const fifth = type === GGMLType.Q5_0 || type === GGMLType.Q5_1;
    const size = type === GGMLType.Q5_0 ? 22 : type === GGMLType.Q4_1 ? 20 : 24;
    const o = at + b * size;
    d[b] = half(o);
    if (hasMin) m[b] = half(o + 2);
    const qhAt = o + (hasMin ? 4 : 2), qsAt = qhAt + (fifth ? 4 : 0);
    const qh = fifth ? word(qhAt) : 0;
    for (let j = 0; j < 16; j++) {
      const lo = (bytes[qsAt + j]! & 15) | (((qh >>> j) & 1) << 4);
      const hi = (bytes[qsAt + j]! >> 4) | (((qh >>> (j + 16)) & 1) << 4);
      const offset = type === GGMLType.Q5_0 ? 16 : 0;
      q[b * 32 + j] = lo - offset;
      q[b * 32 + 16 + j] = hi - offset;
    }
  }
  return hasMinType(type) ? { q, d, m } : { q, d };
}

const hasMinType = (t: GGMLType) => t === GGMLType.Q4_1 || t === GGMLType.Q5_1;

/** Sub-block j's 6-bit scale and min from a K-quant's 12 scale bytes at `at`. */
function scaleAndMin(bytes: Uint8Array, at: number, j: number): [number, number] {
  const s = (i: number) => bytes[at + i]!;
  if (j < 4) return [s(j) & 63, s(j + 4) & 63];
  return [(s(j + 4) & 15) | ((s(j - 4) >> 6) << 4), (s(j + 4) >> 4) | ((s(j) >> 6) << 4)];
}

interface SuperRow {
  q: Int32Array;      // every weight's quant
  d: Float32Array;    // per super-block
  dmin: Float32Array;
  scale: Int32Array;  // per 32-value sub-block
  min: Int32Array;
}

function unpackSuperRow(type: GGMLType, bytes: Uint8Array, at: number, cols: number): SuperRow {
  const supers = cols / 256, five = type === GGMLType.Q5_K, size = five ? 176 : 144;
  const row: SuperRow = { q: new Int32Array(cols), d: new Float32Array(supers), dmin: new Float32Array(supers), scale: new Int32Array(cols / 32), min: new Int32Array(cols / 32) };
  const half = (o: number) => f16ToF32(bytes[o]! | (bytes[o + 1]! << 8));
  for (let b = 0; b < supers; b++) {
    const o = at + b * size;
    row.d[b] = half(o);
    row.dmin[b] = half(o + 2);
    for (let j = 0; j < 8; j++) [row.scale[b * 8 + j], row.min[b * 8 + j]] = scaleAndMin(bytes, o + 4, j);
    const qh = o + 16, qs = o + 16 + (five ? 32 : 0);
    for (let g = 0; g < 4; g++) {
      for (let l = 0; l < 32; l++) {
        const byte = bytes[qs + 32 * g + l]!;
        const hiBits = five ? bytes[qh + l]! : 0;
        row.q[b * 256 + 64 * g + l] = (byte & 15) + 16 * ((hiBits >> (2 * g)) & 1);
        row.q[b * 256 + 64 * g + 32 + l] = (byte >> 4) + 16 * ((hiBits >> (2 * g + 1)) & 1);
      }
    }
  }
  return row;
}

/** One output as llama.cpp's AVX2 vec_dot of the 32-value types computes it. */
function llamaOrderDot(w: Unpacked, x: ReturnType<typeof llamaActivations>, cols: number): number {
  const acc = [0, 0, 0, 0, 0, 0, 0, 0];
  let mins = 0;
  for (let b = 0; b < cols / 32; b++) {
    const scale = f32(w.d[b]! * x.d[b]!);
    for (let k = 0; k < 8; k++) {
      let dot = 0;
      for (let j = 4 * k; j < 4 * k + 4; j++) dot += w.q[b * 32 + j]! * x.q[b * 32 + j]!;
      acc[k] = fusedF32(dot, scale, acc[k]!);
    }
    if (w.m) mins = fusedF32(w.m[b]!, x.s![b]!, mins);
  }
  const a = (i: number, j: number) => f32(acc[i]! + acc[j]!);
  const sum = f32(f32(a(0, 4) + a(2, 6)) + f32(a(1, 5) + a(3, 7)));
  return w.m ? f32(sum + mins) : sum;
}

/** One output as llama.cpp's AVX2 vec_dot of Q5_K computes it. */
function llamaOrderQ5_KDot(w: SuperRow, x: ReturnType<typeof llamaActivations>, cols: number): number {
  const acc = [0, 0, 0, 0, 0, 0, 0, 0];
  let mins = 0;
  for (let b = 0; b < cols / 256; b++) {
    const dx = x.d[b * 8]!;
    const d = f32(dx * w.d[b]!), dmin = f32(-dx * w.dmin[b]!);
    const lanes = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let c = 0; c < 8; c++) {
      for (let k = 0; k < 8; k++) {
        let dot = 0;
        for (let v = b * 256 + 32 * c + 4 * k, e = v + 4; v < e; v++) dot += w.q[v]! * x.q[v]!;
        lanes[k]! += w.scale[b * 8 + c]! * dot;
      }
    }
    for (let k = 0; k < 8; k++) acc[k] = fusedF32(lanes[k]!, d, acc[k]!);
    let minDot = 0;
    for (let j = 0; j < 8; j++) minDot += w.min[b * 8 + j]! * (x.sums16[(b * 8 + j) * 2]! + x.sums16[(b * 8 + j) * 2 + 1]!);
    mins = fusedF32(minDot, dmin, mins);
  }
  const a = (i: number, j: number) => f32(acc[i]! + acc[j]!);
  return f32(f32(f32(a(0, 4) + a(2, 6)) + f32(a(1, 5) + a(3, 7))) + mins);
}

test('a decode against packed Q8_0 / Q5_0 / Q4_1 / Q5_1 / Q5_K weights sums in llama.cpp\'s order (AVX-512)', onAvx512, () => {
  const rng = new Rng(41);
  for (const type of [GGMLType.Q8_0, GGMLType.Q5_0, GGMLType.Q4_1, GGMLType.Q5_1, GGMLType.Q5_K]) {
    const superBlocks = type === GGMLType.Q5_K;
    for (const cols of superBlocks ? [256, 1024] : [32, 256, 1024]) {
      const rows = 48;
      const bytes = randomWeightBytes(type, rows, cols, rng);
      const rowBytes = bytes.length / rows;
      const x = rng.floats(cols).map((v, i) => v * (1 + (i % 7)));
      const xq = llamaActivations(type, x);
      const want = Float32Array.from({ length: rows }, (_, r) => (superBlocks
        ? llamaOrderQ5_KDot(unpackSuperRow(type, bytes, r * rowBytes, cols), xq, cols)
        : llamaOrderDot(unpackRow(type, bytes, r * rowBytes, cols), xq, cols)));
      forEachIsa((isa) => {
        if (isa !== 'avx512') return;
        const w = native.createWeight('w', type, rows, cols, bytes);
        const got = new Float32Array(rows);
        native.matmul(got, x, 1, w);
        for (let r = 0; r < rows; r++) assert.equal(got[r], want[r], `${isa} ${typeName(type)} cols=${cols} row ${r}`);
      });
    }
  }
});

test('with sum order llama.cpp, a prefill against packed Q8_0 / Q5_0 / Q4_1 / Q5_1 weights sums every row in llama.cpp\'s order too (AVX-512)', onAvx512, () => {
  const rng = new Rng(43);
  assert.equal(addon.sumOrder(), 'fast', 'the default');
  try {
    for (const type of [GGMLType.Q8_0, GGMLType.Q5_0, GGMLType.Q4_1, GGMLType.Q5_1]) {
      const rows = 48, cols = 512;
      const bytes = randomWeightBytes(type, rows, cols, rng);
      const rowBytes = bytes.length / rows;
      const w = native.createWeight('w', type, rows, cols, bytes);
      // Odd and even activation counts: rows go two at a time, and a tile's last may be alone.
      for (const n of [2, 3, 9, 17]) {
        const x = rng.floats(n * cols).map((v, i) => v * (1 + (i % 7)));
        const want = new Float32Array(n * rows);
        for (let i = 0; i < n; i++) {
          const xq = llamaActivations(type, x.subarray(i * cols, (i + 1) * cols));
          for (let r = 0; r < rows; r++) want[i * rows + r] = llamaOrderDot(unpackRow(type, bytes, r * rowBytes, cols), xq, cols);
        }
        forEachIsa((isa) => {
          if (isa !== 'avx512') return;
          const got = new Float32Array(n * rows);
          addon.setSumOrder('llama.cpp');
          native.matmul(got, x, n, w);
          assert.deepEqual(got, want, `${typeName(type)} n=${n}: llama.cpp order`);
          addon.setSumOrder('fast');
          native.matmul(got, x, n, w);
          assert.ok(got.some((v, i) => v !== want[i]), `${typeName(type)} n=${n}: the fast order sums another way`);
        });
      }
    }
  } finally {
    addon.setSumOrder('fast');
  }
});

test('the f32 fused multiply-add the expected values use rounds once', () => {
  // 1 + 2^-24 is halfway between 1 and the next f32. The products below put the exact sum just above or
  // just below it, by less than f64 keeps: rounding the f64 sum to f32 would give 1 both times.
  assert.equal(fusedF32(1 + 2 ** -52, 2 ** -24, 1), 1 + 2 ** -23);
  assert.equal(fusedF32(1 - 2 ** -53, 2 ** -24, 1), 1);
  assert.equal(fusedF32(1 + 2 ** -16, 2 ** -24, 1), 1 + 2 ** -23);
  assert.equal(fusedF32(3, 0.5, 0.25), 1.75);
  assert.equal(fusedF32(-(1 + 2 ** -52), 2 ** -24, -1), -(1 + 2 ** -23));
});

test('the sum order takes only its two names', () => {
  assert.throws(() => addon.setSumOrder('exact'), /order must be 'fast' or 'llama.cpp', got 'exact'/);
  assert.equal(addon.sumOrder(), 'fast');
});

test('with sum order llama.cpp, a prefill against packed Q3_K / Q5_K / Q6_K / IQ4_XS weights gives each row\'s decode to the bit (AVX-512)', onAvx512, () => {
  // A decode of these types sums as llama.cpp's dot product does (arch-parity.test.ts checks the tokens);
  // in that order a prefill must give every activation row exactly what a decode of that row gives (for
  // IQ4_XS below 8 rows: from 8 on llama.cpp takes its IQ panel gemm, tested below).
  const rng = new Rng(47);
  try {
    for (const type of [GGMLType.Q3_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.IQ4_XS]) {
      const rows = 32, cols = 512, n = 5;
      const w = native.createWeight('w', type, rows, cols, randomWeightBytes(type, rows, cols, rng));
      const x = rng.floats(n * cols).map((v, i) => v * (1 + (i % 7)));
      forEachIsa((isa) => {
        if (isa !== 'avx512') return;
        const decodes = new Float32Array(n * rows);
        for (let i = 0; i < n; i++) native.matmul(decodes.subarray(i * rows, (i + 1) * rows), x.subarray(i * cols, (i + 1) * cols), 1, w);
        const got = new Float32Array(n * rows);
        addon.setSumOrder('llama.cpp');
        native.matmul(got, x, n, w);
        assert.deepEqual(got, decodes, `${typeName(type)}: llama.cpp order`);
        addon.setSumOrder('fast');
        native.matmul(got, x, n, w);
        assert.ok(got.some((v, i) => v !== decodes[i]), `${typeName(type)}: the fast order sums another way`);
      });
    }
  } finally {
    addon.setSumOrder('fast');
  }
});

/**
 * One output as llama.cpp's repacked Q2_K (on AVX-512) and Q4_K kernels compute it: per span of values
 * (its gemv: a whole super-block; its gemm: 128 values for Q2_K, 64 for Q4_K) the scaled dots in one
 * integer and the mins against the activation sums in another; each meets its f32 scale (d_w * d_x,
 * dmin * d_x) in a fused multiply-add into a sum of its own; the first sum less the second.
 */
function llamaRepackedDot(type: GGMLType, bytes: Uint8Array, at: number, x: ReturnType<typeof llamaActivations>, cols: number, span: number): number {
  const half = (o: number) => f16ToF32(bytes[o]! | (bytes[o + 1]! << 8));
  const row = type === GGMLType.Q4_K ? unpackSuperRow(type, bytes, at, cols) : undefined;
  let acc = 0, accMins = 0;
  for (let b = 0; b < cols / 256; b++) {
    const o = at + b * 84;
    const d = row ? row.d[b]! : half(o + 80), dmin = row ? row.dmin[b]! : half(o + 82);
    for (let c = 0; c < 256 / span; c++) {
      let total = 0, mins = 0;
      for (let v = span * c; v < span * (c + 1); v++) {
        if (row) {
          total += row.scale[b * 8 + (v >> 5)]! * row.q[b * 256 + v]! * x.q[b * 256 + v]!;
        } else {
          const h = v >> 7, s = (v >> 5) & 3, l = v & 31;
          total += (bytes[o + 8 * h + 2 * s + (l >> 4)]! & 15) * ((bytes[o + 16 + 32 * h + l]! >> (2 * s)) & 3) * x.q[b * 256 + v]!;
        }
      }
      // The mins of the span's sub-blocks (16 values for Q2_K, 32 for Q4_K) against the activation sums.
      for (let j = span * c / 16; j < span * (c + 1) / 16; j++) {
        mins += row ? row.min[b * 8 + (j >> 1)]! * x.sums16[b * 16 + j]! : (bytes[o + j]! >> 4) * x.sums16[b * 16 + j]!;
      }
      acc = fusedF32(total, f32(d * x.d[b * 8]!), acc);
      accMins = fusedF32(mins, f32(dmin * x.d[b * 8]!), accMins);
    }
  }
  return f32(acc - accMins);
}

/** The spans llamaRepackedDot takes: a whole super-block for the gemv; for the gemm, 128 values (Q2_K) or 64 (Q4_K). */
const gemvSpan = 256;
const gemmSpan = (type: GGMLType) => (type === GGMLType.Q4_K ? 64 : 128);

test('a decode against packed Q2_K / Q4_K weights sums as llama.cpp\'s repacked gemv does (AVX-512)', onAvx512, () => {
  const rng = new Rng(49);
  for (const type of [GGMLType.Q2_K, GGMLType.Q4_K]) {
    for (const cols of [256, 1024]) {
      const rows = 48;
      const bytes = randomWeightBytes(type, rows, cols, rng);
      const rowBytes = bytes.length / rows;
      const x = rng.floats(cols).map((v, i) => v * (1 + (i % 7)));
      const xq = llamaActivations(type, x);
      const want = Float32Array.from({ length: rows }, (_, r) => llamaRepackedDot(type, bytes, r * rowBytes, xq, cols, gemvSpan));
      forEachIsa((isa) => {
        if (isa !== 'avx512') return;
        const got = new Float32Array(rows);
        native.matmul(got, x, 1, native.createWeight('w', type, rows, cols, bytes));
        assert.deepEqual(got, want, `${typeName(type)} cols=${cols}`);
      });
    }
  }
});

test('with sum order llama.cpp, a prefill against packed Q2_K / Q4_K sums as llama.cpp\'s repacked gemm for the first n - n % 4 rows and its gemv for the rest (AVX-512)', onAvx512, () => {
  const rng = new Rng(55);
  try {
    for (const type of [GGMLType.Q2_K, GGMLType.Q4_K]) {
      for (const n of [3, 7, 8]) {
        const rows = 32, cols = 512;
        const bytes = randomWeightBytes(type, rows, cols, rng);
        const rowBytes = bytes.length / rows;
        const x = rng.floats(n * cols).map((v, i) => v * (1 + (i % 7)));
        const want = new Float32Array(n * rows);
        const gemmRows = n > 3 ? n - (n % 4) : 0;
        for (let i = 0; i < n; i++) {
          const xq = llamaActivations(type, x.subarray(i * cols, (i + 1) * cols));
          for (let r = 0; r < rows; r++) want[i * rows + r] = llamaRepackedDot(type, bytes, r * rowBytes, xq, cols, i < gemmRows ? gemmSpan(type) : gemvSpan);
        }
        forEachIsa((isa) => {
          if (isa !== 'avx512') return;
          const got = new Float32Array(n * rows);
          addon.setSumOrder('llama.cpp');
          native.matmul(got, x, n, native.createWeight('w', type, rows, cols, bytes));
          assert.deepEqual(got, want, `${typeName(type)} n=${n}`);
        });
      }
    }
  } finally {
    addon.setSumOrder('fast');
  }
});

const IQ4_NL_VALUES = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/**
 * One output as llama.cpp's IQ panel gemm computes an IQ4_XS row, which it runs from 8 activation rows
 * on: per super-block the integer dots times the sub-block scales in one integer, meeting d_w * d_x in a
 * fused multiply-add.
 */
function llamaIQ4_XSPanelDot(bytes: Uint8Array, at: number, x: ReturnType<typeof llamaActivations>, cols: number): number {
  let acc = 0;
  for (let b = 0; b < cols / 256; b++) {
    const o = at + b * 136;
    const d = f16ToF32(bytes[o]! | (bytes[o + 1]! << 8));
    const scalesHigh = bytes[o + 2]! | (bytes[o + 3]! << 8);
    let total = 0;
    for (let j = 0; j < 8; j++) {
      const scale = (((bytes[o + 4 + (j >> 1)]! >> (4 * (j & 1))) & 15) | (((scalesHigh >> (2 * j)) & 3) << 4)) - 32;
      let dot = 0;
      for (let l = 0; l < 16; l++) {
        const byte = bytes[o + 8 + 16 * j + l]!;
        dot += IQ4_NL_VALUES[byte & 15]! * x.q[b * 256 + 32 * j + l]! + IQ4_NL_VALUES[byte >> 4]! * x.q[b * 256 + 32 * j + 16 + l]!;
      }
      total += scale * dot;
    }
    acc = fusedF32(total, f32(d * x.d[b * 8]!), acc);
  }
  return acc;
}

test('with sum order llama.cpp, a prefill of 8 or more rows against packed IQ4_XS sums as llama.cpp\'s IQ panel gemm (AVX-512)', onAvx512, () => {
  const rng = new Rng(56);
  try {
    for (const n of [8, 11]) {
      const rows = 32, cols = 512;
      const bytes = randomWeightBytes(GGMLType.IQ4_XS, rows, cols, rng);
      const rowBytes = bytes.length / rows;
      const x = rng.floats(n * cols).map((v, i) => v * (1 + (i % 7)));
      const want = new Float32Array(n * rows);
      for (let i = 0; i < n; i++) {
        const xq = llamaActivations(GGMLType.IQ4_XS, x.subarray(i * cols, (i + 1) * cols));
        for (let r = 0; r < rows; r++) want[i * rows + r] = llamaIQ4_XSPanelDot(bytes, r * rowBytes, xq, cols);
      }
      forEachIsa((isa) => {
        if (isa !== 'avx512') return;
        const got = new Float32Array(n * rows);
        addon.setSumOrder('llama.cpp');
        native.matmul(got, x, n, native.createWeight('w', GGMLType.IQ4_XS, rows, cols, bytes));
        assert.deepEqual(got, want, `n=${n}`);
      });
    }
  } finally {
    addon.setSumOrder('fast');
  }
});
