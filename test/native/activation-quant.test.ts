// The int8 activations each weight type's matmul runs on equal, byte for byte and bit for bit,
// llama.cpp's (Q8_0 / Q8_1 per 32 values with a half scale, Q8_K per 256 values with an f32 scale),
// written out independently in llama-activation-quant.ts, on every ISA: random rows of several
// magnitudes, rows whose values land exactly on .5 after scaling (ties go to even), all-zero blocks,
// rows whose largest value is negative, rows where +m and -m are both the largest, and scales that are
// half subnormals; for Q4_1 / Q5_1 also Q8_1's s field per block.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GGMLType, typeName } from '../../src/model/gguf/types.js';
import { addon, forEachIsa, Rng } from './helpers.js';
import { llamaActivations } from './llama-activation-quant.js';

const BLOCK32_TYPES = [GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL];
const SUPER_TYPES = [GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.IQ4_XS];

/** A row of `cols` values in one of several shapes, chosen by `kind`. */
function testRow(kind: number, cols: number, rng: Rng): Float32Array {
  const row = new Float32Array(cols);
  const uniform = (scale: number) => { for (let i = 0; i < cols; i++) row[i] = (rng.next() * 2 - 1) * scale; };
  // Integers and half-integers up to 127 in magnitude, with 127 (or -127) at the front of every block of
  // 32: a scale of exactly 1 for both formats, so every half-integer is a tie.
  const ties = (sign: number) => {
    for (let i = 0; i < cols; i++) row[i] = Math.round((rng.next() * 2 - 1) * 252) / 2;
    for (let b = 0; b < cols; b += 32) row[b] = 127 * sign;
  };
  switch (kind % 8) {
    case 0: uniform(1); break;
    case 1: uniform(1e-3 + rng.next() * 1e3); break;
    case 2: ties(1); break;
    case 3: ties(-1); break;
    case 4: { // the largest value negative; one all-zero block of 32 and, when it fits, of 256
      uniform(0.5);
      for (let b = 0; b < cols; b += 256) row[b + 7 + Math.floor(rng.next() * 200)] = -0.75;
      row.fill(0, 32, 64);
      if (cols >= 512) row.fill(0, 256, 512);
      break;
    }
    case 5: { // +m and -m both present: the first one decides Q8_K's sign
      uniform(0.3);
      for (let b = 0; b < cols; b += 256) {
        const first = rng.next() < 0.5 ? 1 : -1;
        row[b + 3] = first * 0.9;
        row[b + 100] = -first * 0.9;
      }
      break;
    }
    case 6: uniform(2e-4); break; // Q8_0 scales that are half subnormals
    case 7: row.fill(0); break;
  }
  return row;
}

function sameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}[${i}]: ${got[i]} instead of ${want[i]}`);
  }
}

function sameBytes(got: Int8Array, want: Int8Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) assert.fail(`${what}[${i}]: ${got[i]} instead of ${want[i]}`);
  }
}

function checkType(type: GGMLType, colsList: readonly number[], seed: number): void {
  const rng = new Rng(seed);
  for (const cols of colsList) {
    for (const n of [1, 3, 9]) {
      const x = new Float32Array(n * cols);
      for (let r = 0; r < n; r++) x.set(testRow(r + cols, cols, rng), r * cols);
      const want = llamaActivations(type, x);
      forEachIsa((isa) => {
        const label = `${isa} ${typeName(type)} n=${n} cols=${cols}`;
        const got = addon.quantizeActivations(x, n, cols, type);
        sameBytes(got.q, want.q, `${label} quants`);
        sameBits(got.d, want.d, `${label} scales`);
        if (want.s !== undefined) {
          assert.ok(got.s !== undefined, `${label}: no Q8_1 s`);
          sameBits(got.s, want.s, `${label} Q8_1 s`);
        } else if (got.s !== undefined) {
          const s = Float32Array.from(want.sums16, (sum, g) => Math.fround(want.d[g >> 1]! * sum));
          sameBits(got.s, s, `${label} scaled sums`);
        } else {
          assert.ok(!SUPER_TYPES.includes(type), `${label}: no scaled sums`);
        }
      });
    }
  }
}

for (const type of BLOCK32_TYPES) {
  test(`${typeName(type)} matmuls quantize activations exactly as llama.cpp's Q8_0 on every ISA`, () => {
    checkType(type, [32, 96, 256, 2048], 7100 + type);
  });
}

for (const type of SUPER_TYPES) {
  test(`${typeName(type)} matmuls quantize activations exactly as llama.cpp's Q8_K on every ISA`, () => {
    checkType(type, [256, 512, 2048], 7200 + type);
  });
}

// Q8_1's s is the f32 product of the unrounded scale and the quant sum, rounded to a half, which is not
// d * sum(q) with the half d. With a largest value of 127 the scale is 1 and s is the sum rounded to a
// half: above 2048 halves step by 2, so an odd sum is a tie and goes to the even mantissa (2049 -> 2048,
// 2051 -> 2052, and the same negated). With 100 instead of 127, d = 100/127 rounds to a half while s
// keeps the f32 scale.
test('Q4_1 / Q5_1 activations carry llama.cpp\'s Q8_1 s: ties to even, negative sums, the unrounded scale', () => {
  const cases: [number[], number][] = [];
  for (const sign of [1, -1]) {
    for (const [last, s] of [[2, 2048], [4, 2052], [3, 2050], [1, 2048]] as const) {
      cases.push([[127, ...new Array<number>(30).fill(64), last].map((v) => v * sign), s * sign]);
    }
  }
  const cols = 32 * cases.length;
  const x = new Float32Array(cols);
  cases.forEach(([values], b) => x.set(values, b * 32));
  const spread = new Float32Array(64);
  for (let j = 0; j < 64; j++) spread[j] = j % 32 === 0 ? 100 : ((j * 37) % 61) - 20;
  for (const type of [GGMLType.Q4_1, GGMLType.Q5_1]) {
    const want = llamaActivations(type, x);
    cases.forEach(([, s], b) => assert.equal(want.s![b], s, `transcription, block ${b}`));
    const wantSpread = llamaActivations(type, spread);
    forEachIsa((isa) => {
      const got = addon.quantizeActivations(x, 1, cols, type);
      sameBits(got.s!, want.s!, `${isa} ${typeName(type)} Q8_1 s`);
      const gotSpread = addon.quantizeActivations(spread, 1, 64, type);
      sameBits(gotSpread.s!, wantSpread.s!, `${isa} ${typeName(type)} Q8_1 s with a scale that is not a half`);
      // Not d * sum(q): the scale's rounding to a half shows.
      assert.notEqual(gotSpread.s![0], Math.fround(gotSpread.d[0]! * gotSpread.q.slice(0, 32).reduce((a, v) => a + v, 0)));
    });
  }
});

test('quantizeActivations rejects types without int8 activations and misaligned rows', () => {
  const x = new Float32Array(256);
  assert.throws(() => addon.quantizeActivations(x, 1, 256, GGMLType.F16), /has no int8 activations/);
  assert.throws(() => addon.quantizeActivations(x, 1, 128, GGMLType.Q4_K), /multiple of 256/);
  assert.throws(() => addon.quantizeActivations(x, 2, 256, GGMLType.Q8_0), /x has 256 elements/);
});
