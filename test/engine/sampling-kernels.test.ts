// The sampler's native whole-vocabulary passes against the plain TypeScript ones they replace.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/engine/rng.js';
import { samplingKernels, scriptSamplingKernels } from '../../src/engine/sampling-kernels.js';
import { forEachIsa } from '../native/helpers.js';

const native = samplingKernels();

function logitsOf(n: number, seed: number, spread = 3): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 2 * spread);
}

test('the native kernels are in use (the addon is built for the tests)', () => {
  assert.notEqual(native, scriptSamplingKernels);
});

test('stats: max, first argmax and log-sum-exp agree with float64 arithmetic', () => {
  for (const n of [1, 7, 16, 17, 1000, 151_936]) {
    const x = logitsOf(n, n);
    x[n >> 1] = 9;
    if (n > 2) x[n - 1] = 9; // a tie: the first index wins
    const want = scriptSamplingKernels.stats(x);
    const got = native.stats(x);
    assert.equal(got.max, want.max);
    assert.equal(got.argmax, want.argmax);
    assert.ok(Math.abs(got.logSumExp - want.logSumExp) < 1e-5 * Math.max(1, Math.abs(want.logSumExp)), `n=${n}: ${got.logSumExp} vs ${want.logSumExp}`);
  }
  const masked = Float32Array.of(-Infinity, 2, -Infinity);
  assert.ok(Math.abs(native.stats(masked).logSumExp - 2) < 1e-6);
  // The native pass takes the vocabulary a chunk at a time, rescaling its sum when a later chunk holds a
  // larger max: here the max rises by 60 after 100K values, and everything before it all but vanishes.
  const rising = logitsOf(151_936, 9);
  rising[120_000] = 60;
  const want = scriptSamplingKernels.stats(rising);
  const got = native.stats(rising);
  assert.equal(got.argmax, 120_000);
  assert.ok(Math.abs(got.logSumExp - want.logSumExp) < 1e-5 * Math.abs(want.logSumExp), `${got.logSumExp} vs ${want.logSumExp}`);
  const withInf = logitsOf(10_000, 4);
  withInf[7_000] = Infinity;
  assert.deepEqual(native.stats(withInf), { max: Infinity, argmax: 7_000, logSumExp: Infinity });
  const withNaN = logitsOf(10_000, 4);
  withNaN[9_999] = NaN;
  assert.ok(Number.isNaN(native.stats(withNaN).logSumExp));
});

test('topIndices: the same ids in the same order as a full sort, through the heap and the selection paths', () => {
  const x = logitsOf(20_000, 3);
  for (let i = 0; i < 50; i++) x[i * 7] = 1.25; // ties resolve to the lower id
  x[5] = -Infinity;
  for (const count of [1, 5, 64, 256, 257, 5000, 20_000, 30_000]) {
    assert.deepEqual(Array.from(native.topIndices(x, count)), Array.from(scriptSamplingKernels.topIndices(x, count)), `count ${count}`);
  }
});

// At a large vocabulary the heap only sees the runs of 64 values whose max can hold an answer: ties at the
// top across runs, the best values packed into one run, and a short last run.
test('topIndices at a 152K vocabulary: the same ids in the same order as a full sort', () => {
  const x = logitsOf(151_937, 5);
  for (let i = 0; i < 30; i++) x[i * 4999] = 40; // tied, one per run
  for (let i = 0; i < 20; i++) x[70_000 + i] = 39 + i / 64; // all in one run (and its neighbour)
  x[151_936] = 39.5; // in the last, partial run
  for (const count of [1, 5, 40, 64, 256]) {
    assert.deepEqual(Array.from(native.topIndices(x, count)), Array.from(scriptSamplingKernels.topIndices(x, count)), `count ${count}`);
  }
});

test('drawTempered: the same token as the TypeScript draw, and the distribution it should have', () => {
  const x = Float32Array.of(0, Math.log(2), Math.log(3), -Infinity, Math.log(4));
  for (const r of [0, 0.05, 0.1, 0.2999, 0.3001, 0.5, 0.61, 0.99, 0.999999]) {
    assert.equal(native.drawTempered(x, 1, r), scriptSamplingKernels.drawTempered(x, 1, r), `r=${r}`);
  }
  // Weights 1:2:3:0:4 -> cumulative 0.1, 0.3, 0.6, 0.6, 1.
  assert.equal(native.drawTempered(x, 1, 0.05), 0);
  assert.equal(native.drawTempered(x, 1, 0.25), 1);
  assert.equal(native.drawTempered(x, 1, 0.59), 2);
  assert.equal(native.drawTempered(x, 1, 0.61), 4);
  // Temperature 2 flattens: weights 1:sqrt2:sqrt3:0:2.
  const w = [1, Math.SQRT2, Math.sqrt(3), 0, 2];
  const total = w.reduce((a, b) => a + b, 0);
  assert.equal(native.drawTempered(x, 2, (w[0]! + w[1]! + 0.01) / total), 2);
  assert.throws(() => native.drawTempered(x, 1, 1), /r must be in \[0, 1\)/);
});

test('nucleusFloor: the same threshold as summing a full sort, for peaked and flat logits', () => {
  for (const [seed, spread] of [[5, 1], [6, 4], [7, 12]] as const) {
    const x = logitsOf(50_000, seed, spread);
    x[3] = -Infinity;
    const lse = scriptSamplingKernels.stats(x).logSumExp;
    for (const p of [0.05, 0.5, 0.9, 0.99]) { // the sampler asks only for p < 1
      const want = scriptSamplingKernels.nucleusFloor(x, lse, p);
      const got = native.nucleusFloor(x, native.stats(x).logSumExp, p);
      // Where the running mass crosses p between neighbours, float sums in another order may pick the
      // neighbour: the two floors are then adjacent values of the sorted logits.
      const sorted = Float32Array.from(x).sort().reverse();
      const at = (v: number) => sorted.indexOf(v);
      assert.ok(Math.abs(at(got) - at(want)) <= 1, `spread ${spread} p ${p}: ${got} (rank ${at(got)}) vs ${want} (rank ${at(want)})`);
    }
  }
});

test('drawTempered with a floor draws only from the values at or above it', () => {
  const x = Float32Array.of(0, 1, 2, 3, -Infinity, 2.5);
  for (let i = 0; i < 50; i++) {
    const r = i / 50;
    const got = native.drawTempered(x, 1, r, 2);
    assert.ok(x[got]! >= 2, `r=${r}: drew ${got}`);
    assert.equal(got, scriptSamplingKernels.drawTempered(x, 1, r, 2));
    // The max the sampler already has (from stats) gives the same draw as the one found here.
    assert.equal(native.drawTempered(x, 1, r, 2, 3), got);
    assert.equal(native.drawTempered(x, 0.5, r, undefined, 3), native.drawTempered(x, 0.5, r));
  }
});

test('every ISA: draws and nucleus floors over several chunks with odd tails, floors and masked tokens', () => {
  // 5,003 values: the native passes take 2,048 at a time, and 5,003 leaves a tail of every vector width.
  const x = logitsOf(5_003, 11, 2);
  for (let i = 0; i < x.length; i += 97) x[i] = -Infinity;
  const lse = scriptSamplingKernels.stats(x).logSumExp;
  const sorted = Float32Array.from(x).sort().reverse();
  forEachIsa((isa) => {
    for (const p of [0.3, 0.9]) {
      const got = native.nucleusFloor(x, lse, p);
      const want = scriptSamplingKernels.nucleusFloor(x, lse, p);
      assert.ok(Math.abs(sorted.indexOf(got) - sorted.indexOf(want)) <= 1, `${isa} p ${p}: floor ${got} vs ${want}`);
    }
    const floor = scriptSamplingKernels.nucleusFloor(x, lse, 0.6);
    for (let k = 0; k < 60; k++) {
      const r = (k + 0.5) / 60;
      for (const [temperature, f] of [[0.7, undefined], [1.3, floor]] as const) {
        const got = native.drawTempered(x, temperature, r, f);
        assert.equal(got, scriptSamplingKernels.drawTempered(x, temperature, r, f), `${isa} T ${temperature} floor ${f} r ${r}`);
        assert.ok(x[got]! >= (f ?? -Infinity) && x[got]! > -Infinity, `${isa}: drew ${got}, below the floor or masked`);
      }
    }
  });
});
