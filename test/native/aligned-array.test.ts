// KV arrays kept in JS memory start on a page boundary (native/aligned_buffer.cc): a plain large
// Float32Array starts 16 bytes into a cache line, which splits every vector load of a cache row.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArrayKV } from '../../src/backend/array-kv.js';
import { alignedFloat32Array } from '../../src/backend/aligned-array.js';
import { loadNativeAddon } from '../../src/backend/native/addon.js';
import { PagedKVManager } from '../../src/kv/paged-kv.js';
import { StaticKVManager } from '../../src/kv/static-kv.js';

const addon = loadNativeAddon();

test('alignedFloat32Array: page-aligned, zero-filled, the asked length, and writable', () => {
  for (const length of [0, 1, 1000, 3 << 20]) {
    const a = alignedFloat32Array(length);
    assert.equal(a.length, length);
    if (length > 0) assert.equal(addon.byteAlignment(a), 4096);
    assert.ok(a.every((x) => x === 0));
    if (length > 0) {
      a[length - 1] = 2.5;
      assert.equal(a[length - 1], 2.5);
    }
  }
});

test('byteAlignment sees the misalignment of an offset view and of a plain large Float32Array', () => {
  const a = alignedFloat32Array(64);
  assert.equal(addon.byteAlignment(a.subarray(1)), 4);
  assert.equal(addon.byteAlignment(a.subarray(4)), 16);
  assert.ok(addon.byteAlignment(new Float32Array(1 << 20)) < 4096);
});

test('ArrayKV, the paged pool and the static pool hand the kernels page-aligned arrays', () => {
  const shape = { layers: 2, kvHeads: 2, headDim: 64, maxSlots: 2, maxContext: 256 };
  const views = [
    new ArrayKV(2, 2, 256, 2, 64),
    new PagedKVManager({ ...shape, blockSize: 16, budgetBytes: 1 << 20 }).view(),
    new StaticKVManager(shape).view(),
  ];
  for (const v of views) {
    for (let l = 0; l < 2; l++) {
      assert.equal(addon.byteAlignment(v.keys(l)), 4096);
      assert.equal(addon.byteAlignment(v.values(l)), 4096);
    }
  }
});
