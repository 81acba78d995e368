// shiftKeys in the reference backend: rotations computed by hand on a tiny cache, then for every K format,
// both layouts, with and without the Hadamard rotation and in both pair orders, keys roped at positions p
// and shifted by d against (a) the same keys roped at p + d and stored, within what the format's rounding
// costs, and (b) the shifted rows rotated exactly in f64 and encoded once, to within one quantization
// step (rarely more than a few values off by one). V, the other layer, other slots and rows outside the
// range keep their bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArrayKV } from '../../src/backend/array-kv.js';
import type { KVView, RopeParams } from '../../src/backend/backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference-backend.js';
import { hadamardBlock } from '../../src/kv/hadamard.js';
import type { KVFormat } from '../../src/kv/format.js';
import { Rng } from '../native/helpers.js';
import {
  CONTEXT, decodeRows, everySpec, firstDifferenceOutside, HEAD_DIM, KV_HEADS, label, LAYERS, makeView, ROW, ropeParams, rowRanges, storeRows, type CacheSpec,
} from './key-shift-caches.js';

const b = new ReferenceBackend();

test('a shift rotates each pair by delta * theta_i in the chosen pair order, without the attention factor', () => {
  const tiny = { nHeads: 1, headDim: 4, ropeDim: 4, freqBase: 100, freqScale: 1 };
  const cases: [RopeParams, number[]][] = [
    // pair (x0, x1) by 3 * 100^0 = 3; pair (x2, x3) by 3 * 100^(-1/2) = 0.3
    [{ ...tiny, mode: 'normal' }, [Math.cos(3), Math.sin(3), -Math.sin(0.3), Math.cos(0.3)]],
    // pairs (x0, x2) by 3 and (x1, x3) by 0.3
    [{ ...tiny, mode: 'neox' }, [Math.cos(3), -Math.sin(0.3), Math.sin(3), Math.cos(0.3)]],
    // factors divide the frequencies (3 / 2, 0.3 / 0.5); the attention factor already scaled the stored key
    [{ ...tiny, mode: 'normal', freqFactors: Float32Array.of(2, 0.5), attnFactor: 1.5 }, [Math.cos(1.5), Math.sin(1.5), -Math.sin(0.6), Math.cos(0.6)]],
    // linear scaling: delta 3 at freqScale 0.5 is an angle of 1.5 for the first pair
    [{ ...tiny, mode: 'normal', freqScale: 0.5 }, [Math.cos(1.5), Math.sin(1.5), -Math.sin(0.15), Math.cos(0.15)]],
  ];
  for (const [p, want] of cases) {
    const kv = new ArrayKV(1, 1, 8, 1, 4, { k: 'f32', v: 'f32' });
    const at = Int32Array.of(2);
    b.kvStore(kv, 0, Float32Array.of(1, 0, 0, 1), Float32Array.of(5, 6, 7, 8), Int32Array.of(0), at);
    b.shiftKeys(kv, 0, 0, 2, 1, 3, p);
    const got = new Float32Array(kv.keys(0).buffer, kv.keys(0).byteOffset + 2 * 16, 4);
    want.forEach((w, i) => assert.ok(Math.abs(got[i]! - w) < 1e-6, `${p.mode} ${JSON.stringify(p.freqFactors)}: ${i}: ${got[i]} vs ${w}`));
    // Back by -3: the key it was, to f32 rounding.
    b.shiftKeys(kv, 0, 0, 2, 1, -3, p);
    [1, 0, 0, 1].forEach((w, i) => assert.ok(Math.abs(got[i]! - w) < 1e-6, `shifted back ${i}: ${got[i]}`));
    assert.deepEqual(Array.from(new Float32Array(kv.values(0).buffer, kv.values(0).byteOffset + 2 * 16, 4)), [5, 6, 7, 8]);
  }
});

/** Rows of k (f64 copies) roped at `positions` exactly, in f64: the truth the stored keys approximate. */
function ropeExact(k: Float32Array, positions: number[], p: RopeParams): Float64Array {
  const out = Float64Array.from(k.subarray(0, positions.length * ROW));
  positions.forEach((pos, t) => rotateRow(out, t * ROW, pos, p, p.attnFactor ?? 1));
  return out;
}

/** Rotates one row of KV_HEADS heads in place by `delta` positions, scaled by m. */
function rotateRow(x: Float64Array, at: number, delta: number, p: RopeParams, m = 1): void {
  const half = p.ropeDim / 2;
  for (let h = 0; h < KV_HEADS; h++) {
    for (let i = 0; i < half; i++) {
      const theta = p.freqBase ** (-2 * i / p.ropeDim) / (p.freqFactors ? p.freqFactors[i]! : 1);
      const angle = delta * p.freqScale * theta;
      const base = at + h * HEAD_DIM;
      const a = p.mode === 'neox' ? base + i : base + 2 * i, c = p.mode === 'neox' ? base + i + half : base + 2 * i + 1;
      const x0 = x[a]!, x1 = x[c]!;
      x[a] = m * (x0 * Math.cos(angle) - x1 * Math.sin(angle));
      x[c] = m * (x0 * Math.sin(angle) + x1 * Math.cos(angle));
    }
  }
}

/** The normalized Walsh-Hadamard transform of each head's blocks, in f64 (its own inverse). */
function hadamardExact(x: Float64Array): Float64Array {
  const block = hadamardBlock(HEAD_DIM);
  for (let s = 0; s < x.length; s += block) {
    for (let len = 1; len < block; len <<= 1) {
      for (let i = s; i < s + block; i += 2 * len) {
        for (let j = i; j < i + len; j++) [x[j], x[j + len]] = [x[j]! + x[j + len]!, x[j]! - x[j + len]!];
      }
    }
    for (let i = s; i < s + block; i++) x[i] = x[i]! / Math.sqrt(block);
  }
  return x;
}

/** Rows as the format stores them and decodes them back (encoded a group at a time). */
function roundTrip(format: KVFormat, rows: Float32Array, rowBytes: number): Float32Array {
  const count = rows.length / ROW, group = format.groupTokens;
  const bytes = new Uint8Array(count * rowBytes), out = new Float32Array(rows.length);
  for (let j = 0; j < count; j += group) format.encode(rows, j * ROW, ROW, bytes, j * rowBytes, rowBytes);
  for (let j = 0; j < count; j++) format.decode(bytes, j * rowBytes, 0, ROW, out, j * ROW, ROW, j % group, rowBytes);
  return out;
}

/**
 * One quantization step of each value of rows y as the format would encode them: the spacing of the
 * codes of its block (32 values of a row; for per-channel formats one channel over a group's 32 rows),
 * or its f16 spacing.
 */
function quantizationSteps(format: KVFormat, y: Float32Array): Float64Array {
  const steps = new Float64Array(y.length);
  const bits = /^kivi(\d)/.exec(format.name)?.[1];
  const spread = (idx: number[]) => {
    const v = idx.map((i) => y[i]!);
    const amax = Math.max(...v.map(Math.abs)), range = Math.max(...v) - Math.min(...v);
    const step = format.name === 'q8_0' ? amax / 127 : format.name === 'q4_0' ? amax / 8 : range / (2 ** Number(bits) - 1);
    for (const i of idx) steps[i] = step;
  };
  if (format.name === 'f32' || format.name === 'f16') {
    y.forEach((v, i) => (steps[i] = format.name === 'f16' ? Math.abs(v) * 2 ** -10 + 2 ** -24 : 0));
  } else if (format.groupTokens > 1) {
    for (let g = 0; g < y.length; g += format.groupTokens * ROW) {
      for (let c = 0; c < ROW; c++) spread(Array.from({ length: format.groupTokens }, (_, j) => g + j * ROW + c));
    }
  } else {
    for (let s = 0; s < y.length; s += 32) spread(Array.from({ length: 32 }, (_, j) => s + j));
  }
  return steps;
}

function l2(a: ArrayLike<number>, b?: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - (b ? b[i]! : 0)) ** 2;
  return Math.sqrt(s);
}

/** The range each spec shifts: whole groups for the per-channel formats, else a range that starts mid-page. */
function rangeFor(view: KVView): { first: number; count: number } {
  return view.keyFormat.groupTokens > 1 ? { first: 32, count: 64 } : { first: 5, count: 70 };
}

const STORED = 96; // rows stored in slots 0 and 1; the paged cache's last slot holds CONTEXT / 2
const BASE = 100; // row j's K is roped at position BASE + j

function shiftCase(spec: CacheSpec, mode: 'normal' | 'neox'): void {
  const p = ropeParams(mode);
  const delta = mode === 'normal' ? 45 : -37;
  const rng = new Rng(spec.key.length * 131 + (spec.layout === 'paged' ? 7 : 0) + (spec.rotate ? 3 : 0) + mode.length);
  const k = rng.floats(STORED * ROW), v = rng.floats(STORED * ROW);
  const at = (shift: number) => Int32Array.from({ length: STORED }, (_, j) => BASE + j + shift);
  const shifted = makeView(spec), direct = makeView(spec);
  const layer = 1, slot = 1;
  // The slot under test, a neighbour before it and the paged cache's half-full last slot.
  for (const [s, rows] of [[0, STORED], [slot, STORED], [2, CONTEXT / 2]] as const) {
    const ks = s === slot ? k : rng.floats(rows * ROW), vs = s === slot ? v : rng.floats(rows * ROW);
    for (const l of [0, layer]) storeRows(b, shifted, l, s, ks, vs, at(0).subarray(0, rows), p);
  }
  storeRows(b, direct, layer, slot, k, v, at(delta), p);
  const { first, count } = rangeFor(shifted);
  const before = Array.from({ length: LAYERS }, (_, l) => [shifted.keys(l).slice(), shifted.values(l).slice()] as const);
  const decodedBefore = decodeRows(shifted, layer, slot, first, count);

  b.shiftKeys(shifted, layer, slot, first, count, delta, p);

  const what = `${label(spec)}, ${mode}, delta ${delta}`;
  for (let l = 0; l < LAYERS; l++) {
    assert.deepEqual(shifted.values(l), before[l]![1], `${what}: layer ${l}'s V changed`);
    const outside = l === layer ? rowRanges(shifted, slot, first, count) : [];
    assert.equal(firstDifferenceOutside(shifted.keys(l), before[l]![0], outside), -1, `${what}: layer ${l}'s K changed outside the rows`);
  }
  const got = decodeRows(shifted, layer, slot, first, count);

  // (b) The shifted rows against the rows before the shift rotated exactly and encoded once more.
  const exact = Float64Array.from(decodedBefore);
  if (spec.rotate) hadamardExact(exact);
  for (let j = 0; j < count; j++) rotateRow(exact, j * ROW, delta, p);
  if (spec.rotate) hadamardExact(exact);
  const exactRows = Float32Array.from(exact);
  const want = roundTrip(shifted.keyFormat, exactRows, shifted.rowBytes);
  const steps = quantizationSteps(shifted.keyFormat, exactRows);
  let off = 0;
  for (let i = 0; i < want.length; i++) {
    const row = Math.floor(i / ROW);
    const scale = Math.max(...Array.from(exactRows.subarray(row * ROW, (row + 1) * ROW), Math.abs));
    const diff = Math.abs(got[i]! - want[i]!);
    assert.ok(diff <= 1.01 * steps[i]! + 1e-6 * scale, `${what}: value ${i} is ${got[i]}, the exact shift encodes to ${want[i]} (step ${steps[i]})`);
    if (diff > 1e-6 * scale) off++;
  }
  if (spec.key !== 'f32') assert.ok(off <= 0.05 * want.length, `${what}: ${off} of ${want.length} values differ from the exact shift's encoding`);

  // (a) Against the same keys roped at p + d: the shift costs at most what the format's rounding costs.
  const truth = ropeExact(k.subarray(first * ROW), Array.from(at(delta).subarray(first, first + count)), p);
  if (spec.rotate) hadamardExact(truth);
  const truthRows = Float32Array.from(truth);
  const oneEncode = l2(roundTrip(shifted.keyFormat, truthRows, shifted.rowBytes), truth) / l2(truth);
  const stored = decodeRows(direct, layer, slot, first, count);
  const errShifted = l2(got, truth) / l2(truth), errStored = l2(stored, truth) / l2(truth);
  assert.ok(errStored <= 1.5 * oneEncode + 1e-6, `${what}: keys stored at p + d are ${errStored} off (one encode: ${oneEncode})`);
  assert.ok(errShifted <= 2.5 * oneEncode + 1e-6, `${what}: shifted keys are ${errShifted} off the keys at p + d (one encode: ${oneEncode})`);
}

for (const spec of everySpec()) {
  test(`shiftKeys moves keys to p + d (${label(spec)})`, () => {
    shiftCase(spec, 'normal');
    shiftCase(spec, 'neox');
  });
}

test('delta 0 and count 0 leave every byte as it was, in every format', () => {
  for (const spec of everySpec()) {
    const view = makeView(spec), p = ropeParams('normal');
    const rng = new Rng(5);
    storeRows(b, view, 0, 0, rng.floats(STORED * ROW), rng.floats(STORED * ROW), Int32Array.from({ length: STORED }, (_, j) => j), p);
    const keys = view.keys(0).slice(), values = view.values(0).slice();
    b.shiftKeys(view, 0, 0, 0, STORED, 0, p);
    b.shiftKeys(view, 0, 0, 32, 0, 17, p);
    assert.deepEqual(view.keys(0), keys, label(spec));
    assert.deepEqual(view.values(0), values, label(spec));
  }
});
