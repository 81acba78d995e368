// shiftKeys natively against the reference: the same cache bytes shifted by both backends are the same
// bytes afterwards, for every K format, both layouts, with and without the Hadamard rotation, in both
// pair orders, and over ranges long enough to run on several threads. Both compute cos and sin in
// double and round each rotated value once to f32, so equality is exact (the two C libraries' cos and
// sin could in principle differ in a last double bit and flip an f32 rounding; these inputs do not).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KVView } from '../../src/backend/backend.js';
import type { KVCacheManager } from '../../src/kv/manager.js';
import { PagedKVManager } from '../../src/kv/paged-kv.js';
import { StaticKVManager } from '../../src/kv/static-kv.js';
import { cloneView, everySpec, HEAD_DIM, KV_HEADS, label, LAYERS, makeView, ROW, ropeParams, storeRows, type CacheSpec } from '../backend/key-shift-caches.js';
import { native, reference, Rng } from './helpers.js';

/** Stores `rows` roped rows in each slot of both layers through the reference, and a native copy of the cache. */
function twinCaches(spec: CacheSpec, context: number, rows: (slot: number) => number, seed: number): [KVView, KVView] {
  const view = makeView(spec, context), rng = new Rng(seed), p = ropeParams('normal');
  for (let slot = 0; slot < view.maxSlots; slot++) {
    const n = rows(slot);
    for (let layer = 0; layer < LAYERS; layer++) {
      storeRows(reference, view, layer, slot, rng.floats(n * ROW), rng.floats(n * ROW), Int32Array.from({ length: n }, (_, j) => 3 * j + slot), p);
    }
  }
  return [view, cloneView(view)];
}

function expectSameBytes(ref: KVView, nat: KVView, what: string): void {
  for (let l = 0; l < LAYERS; l++) {
    assert.deepEqual(nat.keys(l), ref.keys(l), `${what}: layer ${l}'s K`);
    assert.deepEqual(nat.values(l), ref.values(l), `${what}: layer ${l}'s V`);
  }
}

for (const spec of everySpec()) {
  test(`native shiftKeys writes the reference's bytes (${label(spec)})`, () => {
    const [ref, nat] = twinCaches(spec, 128, (slot) => (slot === 2 ? 64 : 128), spec.key.length + (spec.rotate ? 10 : 0));
    const grouped = ref.keyFormat.groupTokens > 1;
    const shifts = [
      { mode: 'normal', slot: 1, first: grouped ? 32 : 3, count: grouped ? 96 : 101, delta: 1000 },
      { mode: 'neox', slot: 0, first: 0, count: grouped ? 64 : 77, delta: -250 },
      { mode: 'neox', slot: 2, first: 32, count: 32, delta: 7 },
    ] as const;
    for (const s of shifts) {
      const p = ropeParams(s.mode);
      reference.shiftKeys(ref, 1, s.slot, s.first, s.count, s.delta, p);
      native.shiftKeys(nat, 1, s.slot, s.first, s.count, s.delta, p);
      expectSameBytes(ref, nat, `${label(spec)}, ${s.mode}, slot ${s.slot} rows ${s.first}+${s.count} by ${s.delta}`);
    }
    const before = nat.keys(1).slice();
    native.shiftKeys(nat, 1, 1, 0, 128, 0, ropeParams('normal'));
    assert.deepEqual(nat.keys(1), before, `${label(spec)}: delta 0 changed bytes`);
  });
}

test('native shiftKeys over a long range (several tasks on the pool) writes the reference\'s bytes', () => {
  const specs: CacheSpec[] = [
    { key: 'f16', layout: 'paged', rotate: false },
    { key: 'q8_0', layout: 'contiguous', rotate: true },
    { key: 'kivi4c', layout: 'paged', rotate: false },
    { key: 'f32', layout: 'contiguous', rotate: false },
  ];
  for (const spec of specs) {
    const [ref, nat] = twinCaches(spec, 1024, (slot) => (slot === 1 ? 1024 : 0), 77);
    const p = ropeParams('neox');
    reference.shiftKeys(ref, 0, 1, 32, 992, -500, p);
    native.shiftKeys(nat, 0, 1, 32, 992, -500, p);
    expectSameBytes(ref, nat, label(spec));
  }
});

test('shiftKeys runs on the managers\' own views (static and paged, rotated q8_0 and f16) with the same bytes in both backends', () => {
  const shape = { layers: LAYERS, kvHeads: KV_HEADS, headDim: HEAD_DIM, maxSlots: 2, maxContext: 256 };
  const makers: [string, () => KVCacheManager][] = [
    ['static q8_0', () => new StaticKVManager({ ...shape, type: { k: 'q8_0', v: 'q8_0' }, prefault: false })],
    ['paged f16', () => new PagedKVManager({ ...shape, type: { k: 'f16', v: 'f16' }, budgetBytes: 1 << 20 })],
  ];
  for (const [name, make] of makers) {
    const [ref, nat] = [make(), make()];
    const p = ropeParams('neox');
    for (const kv of [ref, nat]) {
      const slot = kv.allocSlot()!;
      assert.equal(slot, 0);
      kv.step(Int32Array.of(70));
      const rng = new Rng(11);
      storeRows(reference, kv.view(), 1, slot, rng.floats(70 * ROW), rng.floats(70 * ROW), Int32Array.from({ length: 70 }, (_, j) => 40 + j), p);
    }
    const before = ref.view().keys(1).slice();
    reference.shiftKeys(ref.view(), 1, 0, 10, 60, -40, p);
    native.shiftKeys(nat.view(), 1, 0, 10, 60, -40, p);
    assert.notDeepEqual(ref.view().keys(1), before, `${name}: nothing moved`);
    expectSameBytes(ref.view(), nat.view(), name);
    // The paged slot backs 70 tokens, the static one its whole context.
    if (name.startsWith('paged')) assert.throws(() => native.shiftKeys(nat.view(), 1, 0, 64, 7, 3, p), /rows 64\.\.70 are outside slot 0's 70 tokens/);
  }
});
