// KIVI's formats and residual window: values come back within half a step of their group's range;
// per-channel keys beat per-token keys when channels have outliers (KIVI's premise); the residual window
// keeps the newest R to R + G - 1 tokens in f16 and encodes a group as it leaves; native stores the same
// cache bytes, rings and boundaries as the reference whatever the chunking; misuse is an error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArrayKV } from '../../src/backend/array-kv.js';
import type { AttentionShape, Backend } from '../../src/backend/backend.js';
import { kvFormat, type KVFormatName, type KVType } from '../../src/kv/format.js';
import { PagedKVManager } from '../../src/kv/paged-kv.js';
import { StaticKVManager } from '../../src/kv/static-kv.js';
import { native, reference, relativeError, Rng } from '../native/helpers.js';

const KIVI2: KVType = { k: 'kivi2c', v: 'kivi2t' };
const KIVI4: KVType = { k: 'kivi4c', v: 'kivi4t' };

/** Encodes 32 rows of n values with a format (groups where it has them) and decodes them back. */
function roundTrip(name: KVFormatName, x: Float32Array, n: number): Float32Array {
  const f = kvFormat(name);
  const rowBytes = (n / 32) * f.blockBytes;
  const bytes = new Uint8Array(32 * rowBytes);
  for (let j = 0; j < 32; j += f.groupTokens) f.encode(x, j * n, n, bytes, j * rowBytes, rowBytes);
  const out = new Float32Array(32 * n);
  for (let j = 0; j < 32; j++) f.decode(bytes, j * rowBytes, 0, n, out, j * n, n, j % f.groupTokens, rowBytes);
  return out;
}

/** Keys with outlier channels, as KIVI observed in real models: a few channels 10x larger than the rest. */
function outlierKeys(rng: Rng, n: number): Float32Array {
  const x = rng.floats(32 * n);
  for (let j = 0; j < 32; j++) for (const c of [3, 17, n - 5]) x[j * n + c] = x[j * n + c]! * 10 + 8;
  return x;
}

test('every KIVI value comes back within half a step of its group (plus the f16 rounding of step and minimum)', () => {
  const rng = new Rng(21);
  const n = 64;
  const x = outlierKeys(rng, n);
  for (const [name, bits, perChannel] of [['kivi2t', 2, false], ['kivi4t', 4, false], ['kivi2c', 2, true], ['kivi4c', 4, true]] as const) {
    const back = roundTrip(name, x, n);
    const levels = (1 << bits) - 1;
    for (let j = 0; j < 32; j++) {
      for (let c = 0; c < n; c++) {
        // The group: the 32 channels around c in this row, or this channel in all 32 rows.
        const members = perChannel ? Array.from({ length: 32 }, (_, r) => x[r * n + c]!) : Array.from(x.subarray(j * n + (c & ~31), j * n + (c & ~31) + 32));
        const lo = Math.min(...members), range = Math.max(...members) - lo;
        const bound = (0.5 * range) / levels * 1.01 + 2 ** -10 * (Math.abs(lo) + range);
        const err = Math.abs(back[j * n + c]! - x[j * n + c]!);
        assert.ok(err <= bound, `${name} row ${j} channel ${c}: ${x[j * n + c]} came back as ${back[j * n + c]} (bound ${bound})`);
      }
    }
  }
});

test('with outlier channels, per-channel 2-bit keys keep much more of the keys than per-token 2-bit keys', () => {
  const rng = new Rng(5);
  const n = 128;
  const x = outlierKeys(rng, n);
  const mse = (y: Float32Array) => y.reduce((s, v, i) => s + (v - x[i]!) ** 2, 0) / y.length;
  const perChannel = mse(roundTrip('kivi2c', x, n)), perToken = mse(roundTrip('kivi2t', x, n));
  assert.ok(perChannel < perToken / 4, `per-channel MSE ${perChannel}, per-token ${perToken}`);
});

const S: AttentionShape = { nHeads: 8, nKVHeads: 2, headDim: 64, scale: 1 / 8 };
const WIDTH = S.nKVHeads * S.headDim;

/**
 * Stores `total` tokens into slot 0 in chunks of the given sizes (cycled), attending each chunk's tokens
 * after it is stored as the engine does; returns every position's attention output.
 */
function storeChunks(b: Backend, kv: ArrayKV, total: number, chunks: number[], seed: number): Float32Array[] {
  const rng = new Rng(seed);
  const k = rng.floats(total * WIDTH), v = rng.floats(total * WIDTH), q = rng.floats(total * S.nHeads * S.headDim, 2);
  const qWidth = S.nHeads * S.headDim;
  const outs: Float32Array[] = [];
  for (let at = 0, i = 0; at < total; i++) {
    const len = Math.min(chunks[i % chunks.length]!, total - at);
    const positions = Int32Array.from({ length: len }, (_, p) => at + p);
    b.kvStore(kv, 0, k.subarray(at * WIDTH, (at + len) * WIDTH), v.subarray(at * WIDTH, (at + len) * WIDTH), new Int32Array(len), positions);
    const out = new Float32Array(len * qWidth);
    b.attention(out, q.subarray(at * qWidth, (at + len) * qWidth), kv, 0, new Int32Array(len), positions, S);
    for (let p = 0; p < len; p++) outs.push(out.slice(p * qWidth, (p + 1) * qWidth));
    at += len;
  }
  return outs;
}

for (const [label, type, residual] of [['kivi2', KIVI2, 128], ['kivi4', KIVI4, 64], ['kivi2 without a residual', KIVI2, 0], ['per-token 2-bit, residual 32', { k: 'kivi2t', v: 'kivi2t' } as KVType, 32]] as const) {
  test(`${label}: the window keeps the newest R..R+G-1 tokens f16; every token reads the same whatever the chunking; native matches the reference`, () => {
    const total = 413;
    const group = Math.max(kvFormat(type.k).groupTokens, kvFormat(type.v).groupTokens);
    const ref = new ArrayKV(1, 1, 512, S.nKVHeads, S.headDim, type, residual);
    const want = storeChunks(reference, ref, total, [1], 9);
    const encoded = ref.residual!.encoded(0)[0]!;
    assert.equal(encoded, Math.max(0, Math.floor((total - residual) / group) * group));
    for (const chunks of [[group], [group, 7, Math.max(1, group - 12)], [1]]) {
      // The reference reads each token's rows exactly the same way in any chunking.
      const refChunked = new ArrayKV(1, 1, 512, S.nKVHeads, S.headDim, type, residual);
      assert.deepEqual(storeChunks(reference, refChunked, total, chunks, 9), want, `reference, chunks ${chunks}`);
      const kv = new ArrayKV(1, 1, 512, S.nKVHeads, S.headDim, type, residual);
      const got = storeChunks(native, kv, total, chunks, 9);
      assert.equal(kv.residual!.encoded(0)[0], encoded, `chunks ${chunks}`);
      assert.deepEqual(kv.keys(0).subarray(0, encoded * kv.rowBytes), ref.keys(0).subarray(0, encoded * ref.rowBytes), `keys, chunks ${chunks}`);
      assert.deepEqual(kv.values(0).subarray(0, encoded * kv.rowBytes), ref.values(0).subarray(0, encoded * ref.rowBytes), `values, chunks ${chunks}`);
      for (let p = encoded; p < total; p++) {
        const at = (p % kv.residual!.ringRows) * WIDTH * 2;
        assert.deepEqual(kv.residual!.keys(0).subarray(at, at + WIDTH * 2), ref.residual!.keys(0).subarray(at, at + WIDTH * 2), `ring row ${p}`);
      }
      got.forEach((out, p) => assert.ok(relativeError(out, want[p]!) <= 1e-5, `chunks ${chunks}, position ${p}: ${relativeError(out, want[p]!)}`));
    }
  });
}

test('positions outside a slot\'s residual window, or more than G tokens of a slot in one call, are refused before anything is written', () => {
  for (const b of [native, reference]) {
    const kv = new ArrayKV(1, 1, 512, S.nKVHeads, S.headDim, KIVI2, 32);
    storeChunks(b, kv, 100, [32], 1);
    const before = kv.residual!.encoded(0)[0]!;
    assert.equal(before, 64);
    const row = new Float32Array(WIDTH);
    assert.throws(() => b.kvStore(kv, 0, row, row, Int32Array.of(0), Int32Array.of(10)), /residual window 64\.\.127/);
    assert.throws(() => b.kvStore(kv, 0, row, row, Int32Array.of(0), Int32Array.of(128)), /residual window/);
    const rows = new Float32Array(33 * WIDTH);
    assert.throws(() => b.kvStore(kv, 0, rows, rows, new Int32Array(33), Int32Array.from({ length: 33 }, (_, i) => 100 + i)), /at most 32 tokens of a slot/);
    assert.equal(kv.residual!.encoded(0)[0], before);
  }
});

test('managers with KIVI: blocks hold whole groups, compaction is refused, and a freed slot starts a new window', () => {
  assert.throws(() => new PagedKVManager({ layers: 1, kvHeads: 2, headDim: 64, maxSlots: 2, maxContext: 256, type: KIVI2, blockSize: 16, budgetBytes: 1 << 20 }), /multiple of 32/);
  const paged = new PagedKVManager({ layers: 1, kvHeads: 2, headDim: 64, maxSlots: 2, maxContext: 256, type: KIVI2, budgetBytes: 1 << 20 });
  assert.equal(paged.blockSize, 32);
  const kv = new StaticKVManager({ layers: 2, kvHeads: 2, headDim: 64, maxSlots: 2, maxContext: 256, type: KIVI4 });
  assert.equal(kv.blocks.blockTokens, 32);
  const slot = kv.allocSlot()!;
  assert.ok(kv.step(Int32Array.of(200, 0)).ok);
  const rng = new Rng(2);
  for (let at = 0; at < 200; at += 32) {
    const n = Math.min(32, 200 - at);
    native.kvStore(kv.view(), 1, rng.floats(n * WIDTH), rng.floats(n * WIDTH), new Int32Array(n).fill(slot), Int32Array.from({ length: n }, (_, i) => at + i));
  }
  assert.equal(kv.view().residual!.encoded(1)[slot], 64);
  assert.throws(() => kv.compact(slot, Int32Array.of(0, 1, 2)), /cannot be compacted/);
  kv.freeSlot(slot);
  assert.equal(kv.allocSlot(), slot);
  assert.equal(kv.view().residual!.encoded(1)[slot], 0);
  assert.ok(kv.stats().residualBytes > 0);
});
