// Behaviour of the virtual (vAttention) manager: errors, exhaustion, deferred reclamation, prefix sharing
// through aliased pages, copy-on-write compaction, asynchronous mapping, and closing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultPageSize, isKVError, maxMapCount, VirtualKVManager, type VirtualKVOptions } from '../../src/kv/index.js';
import { readToken, writeToken } from './kv-rows.js';
import type { KVType } from '../../src/kv/format.js';

/** These tests count bytes for f32 rows (4 bytes a value). */
const F32: KVType = { k: 'f32', v: 'f32' };

// 64-byte tokens, 64 tokens per 4 KiB page, 8 pages per slot range.
const SHAPE = { layers: 2, kvHeads: 2, headDim: 8, maxSlots: 4, maxContext: 512, type: F32, pageSize: 4096 };
const RANGES = 4;

function make(options: Partial<VirtualKVOptions> = {}): VirtualKVManager {
  return new VirtualKVManager({ ...SHAPE, budgetBytes: 64 * 4096, ...options });
}

function lensFor(slot: number, tokens: number): Int32Array {
  const lens = new Int32Array(SHAPE.maxSlots);
  lens[slot] = tokens;
  return lens;
}

function fill(kv: VirtualKVManager, slot: number, from: number, to: number, idBase: number): void {
  for (let pos = from; pos < to; pos++) for (let layer = 0; layer < SHAPE.layers; layer++) writeToken(kv, slot, layer, pos, idBase + pos);
}

function expectTokens(kv: VirtualKVManager, slot: number, count: number, idOf: (pos: number) => number): void {
  for (let pos = 0; pos < count; pos++) {
    for (let layer = 0; layer < SHAPE.layers; layer++) assert.equal(readToken(kv, slot, layer, pos), idOf(pos), `slot ${slot} pos ${pos}`);
  }
}

const code = (c: string) => (e: unknown) => isKVError(e) && e.code === c;

test('misuse is a JS exception with a specific code and message', () => {
  const kv = make();
  try {
    assert.throws(() => kv.freeSlot(0), code('ERR_KV_DOUBLE_FREE'));
    assert.throws(() => kv.freeSlot(99), code('ERR_KV_UNKNOWN_SLOT'));
    assert.throws(() => kv.step(lensFor(1, 10)), /slot 1 is not allocated/);
    const slot = kv.allocSlot()!;
    assert.throws(() => kv.step(lensFor(slot, 513)), code('ERR_KV_CONTEXT_OVERFLOW'));
    assert.throws(() => kv.step(new Int32Array(SHAPE.maxSlots + 1)), code('ERR_KV_INVALID_ARGUMENT'));
    assert.ok(kv.step(lensFor(slot, 100)).ok);
    assert.throws(() => kv.step(lensFor(slot, 50)), /would shrink it/);
    assert.throws(() => kv.compact(slot, Int32Array.from([2, 0])), /keep\[1\] = 0 would move a row back/);
    assert.throws(() => kv.compact(slot, Int32Array.from([100])), /outside the slot's 100 tokens/);
    assert.throws(() => kv.sharePrefix(slot, slot, 10), /same slot/);
    assert.throws(() => kv.native.step([1] as unknown as Int32Array), /Int32Array/);
    kv.freeSlot(slot);
    assert.throws(() => kv.freeSlot(slot), /double free/);
  } finally {
    kv.close();
  }
  assert.throws(() => kv.allocSlot(), code('ERR_KV_CLOSED'));
  assert.throws(() => make({ pageSize: 5000 }), /multiple of 4 KiB/);
  assert.throws(() => make({ pageSize: 4 << 20 }), /up to 2 MiB/);
  assert.throws(() => make({ headDim: 0 }), /headDim must be between/);
});

test('pool exhaustion is a result: nothing changes, and the caller can ask first', () => {
  const kv = make({ budgetBytes: 10 * 4096 });
  try {
    const a = kv.allocSlot()!;
    assert.ok(kv.step(lensFor(a, 64 * 2)).ok); // 2 pages x 4 ranges
    assert.equal(kv.freePages(), 2);
    assert.equal(kv.pagesNeeded(a, 64 * 3), 4);
    assert.equal(kv.canGrow(a, 64 * 3), false);
    const result = kv.step(lensFor(a, 64 * 3));
    assert.deepEqual(result, { ok: false, limit: 'pages', pagesNeeded: 4, pagesAvailable: 2, pagesMapped: 0 });
    assert.equal(kv.tokens(a), 128);
    assert.equal(kv.freePages(), 2);
    assert.equal(kv.stepAsync(lensFor(a, 64 * 3)).ok, false);
    assert.equal(kv.pagesForTokens(65), 2 * RANGES);
  } finally {
    kv.close();
  }
});

test('deferred reclamation: a freed slot keeps its pages, is reused first, and gives them up when the pool runs dry', () => {
  const kv = make({ budgetBytes: 16 * 4096 });
  try {
    const a = kv.allocSlot()!;
    assert.ok(kv.step(lensFor(a, 200)).ok); // 4 pages per range = all 16
    kv.freeSlot(a);
    let stats = kv.stats();
    assert.equal(stats.idleSlots, 1);
    assert.equal(stats.idlePages, 16);
    assert.equal(stats.freePages, 0);
    assert.equal(kv.availablePages(), 16);
    // Reused first, without mapping anything again.
    assert.equal(kv.allocSlot(), a);
    const calls = kv.stats().mapCalls;
    const reuse = kv.step(lensFor(a, 150));
    assert.ok(reuse.ok);
    assert.equal(reuse.pagesMapped, 0);
    assert.equal(kv.stats().mapCalls, calls);
    kv.freeSlot(a);
    // Another slot needs pages while the pool is empty: they are taken from the idle slot.
    const b = kv.allocSlot()!;
    assert.equal(b, a, 'idle slot with pages is preferred');
    const c = kv.allocSlot()!;
    assert.ok(kv.step(lensFor(c, 64)).ok);
    stats = kv.stats();
    assert.equal(stats.slots.find((s) => s.slot === c)!.pages, RANGES);
    // b (reused, 0 tokens) gave its surplus to c.
    assert.equal(stats.slots.find((s) => s.slot === b)!.pages, 12);
  } finally {
    kv.close();
  }
  const off = make({ budgetBytes: 16 * 4096, deferredReclaim: false });
  try {
    const a = off.allocSlot()!;
    assert.ok(off.step(lensFor(a, 200)).ok);
    off.freeSlot(a);
    assert.equal(off.freePages(), 16);
    assert.equal(off.stats().idleSlots, 0);
  } finally {
    off.close();
  }
});

test('a shared prefix is stored once: both slots read it through the same pages, the partial page is a copy', () => {
  const kv = make();
  try {
    const a = kv.allocSlot()!;
    const b = kv.allocSlot()!;
    assert.ok(kv.step(lensFor(a, 150)).ok);
    fill(kv, a, 0, 150, 1000);
    const used = kv.stats().usedPages;
    const share = kv.sharePrefix(a, b, 140); // 2 full pages shared, 12 tokens copied into a third
    assert.ok(share.ok);
    assert.equal(share.pagesNeeded, RANGES);
    assert.equal(kv.stats().usedPages, used + RANGES);
    assert.equal(kv.stats().sharedPages, 2 * RANGES);
    for (let layer = 0; layer < SHAPE.layers; layer++) {
      const pa = kv.slotPages(a, layer, 'k');
      const pb = kv.slotPages(b, layer, 'k');
      assert.deepEqual([...pb.subarray(0, 2)], [...pa.subarray(0, 2)]);
      assert.notEqual(pb[2], pa[2]);
    }
    expectTokens(kv, b, 140, (pos) => 1000 + pos);
    // Aliasing: a write through a's address shows up at b's address (one physical page)...
    fill(kv, a, 5, 6, 72);
    assert.equal(readToken(kv, b, 1, 5), 77);
    // ...but the copied partial page is b's own.
    fill(kv, a, 130, 131, -52);
    assert.equal(readToken(kv, b, 1, 130), 1130);
    // b grows on its own pages; a is untouched.
    assert.ok(kv.step(lensFor(b, 300)).ok);
    fill(kv, b, 140, 300, 5000);
    expectTokens(kv, a, 150, (pos) => (pos === 5 ? 77 : pos === 130 ? 78 : 1000 + pos));
    // Compacting b writes into the shared first page: it gets a private copy first.
    const keep = Int32Array.from({ length: 100 }, (_, i) => i * 3);
    assert.ok(kv.compact(b, keep).ok);
    expectTokens(kv, b, 100, (pos) => (pos * 3 === 5 ? 77 : pos * 3 < 140 ? 1000 + pos * 3 : 5000 + pos * 3));
    expectTokens(kv, a, 150, (pos) => (pos === 5 ? 77 : pos === 130 ? 78 : 1000 + pos));
    assert.equal(kv.stats().sharedPages, 0);
    // Freeing the source leaves the pages to the sharer.
    kv.freeSlot(a);
    assert.equal(kv.tokens(b), 100);
    expectTokens(kv, b, 100, (pos) => (pos * 3 === 5 ? 77 : pos * 3 < 140 ? 1000 + pos * 3 : 5000 + pos * 3));
  } finally {
    kv.close();
  }
});

test('compaction moves kept tokens to the front and returns the tail pages to the pool at once', () => {
  const kv = make();
  try {
    const a = kv.allocSlot()!;
    assert.ok(kv.step(lensFor(a, 512)).ok);
    fill(kv, a, 0, 512, 0);
    const free = kv.freePages();
    // Per-layer keep lists (as SnapKV / H2O choose them), 70 tokens each: 2 pages per range stay.
    const l0 = Int32Array.from({ length: 70 }, (_, i) => i * 7);
    const l1 = Int32Array.from({ length: 70 }, (_, i) => 511 - (69 - i) * 2);
    assert.ok(kv.compact(a, [l0, l1]).ok);
    assert.equal(kv.freePages(), free + 6 * RANGES);
    for (let pos = 0; pos < 70; pos++) {
      assert.equal(readToken(kv, a, 0, pos), l0[pos]);
      assert.equal(readToken(kv, a, 1, pos), l1[pos]);
    }
  } finally {
    kv.close();
  }
});

test('stepAsync maps on a background thread; wait() joins before the model writes', () => {
  const kv = make();
  try {
    const a = kv.allocSlot()!;
    for (let t = 1; t <= 512; t += 37) {
      const result = kv.stepAsync(lensFor(a, t));
      assert.ok(result.ok);
      kv.wait();
      fill(kv, a, Math.max(0, t - 37), t, 0);
    }
    expectTokens(kv, a, 475, (pos) => pos);
    // A later call joins implicitly.
    const b = kv.allocSlot()!;
    kv.stepAsync(lensFor(b, 300));
    kv.freeSlot(b);
    assert.equal(kv.stats().idleSlots, 1);
  } finally {
    kv.close();
  }
});

test('the view is the contiguous layout over the reserved range, and close() detaches it', () => {
  const kv = make();
  const view = kv.view();
  assert.equal(view.layout, 'contiguous');
  assert.equal(view.maxContext, 512);
  assert.equal(view.keys(1).length, SHAPE.maxSlots * 512 * 64);
  assert.equal(view.rowBytes, 64);
  assert.equal(view.rowsPerPage, 64);
  assert.throws(() => view.keys(2), /layer 2 out of range/);
  const slot = kv.allocSlot()!;
  kv.step(lensFor(slot, 1));
  view.values(1)[slot * 512 * 64 + 3] = 42;
  assert.equal(new Uint8Array(kv.native.buffer(3))[slot * 512 * 64 + 3], 42);
  kv.close();
  assert.equal(view.keys(0).length, 0, 'detached: a stale view reads nothing instead of faulting');
});

test('maxContext is padded so that a slot is whole pages, and pages hold whole rows', () => {
  // 3 kv heads x 8 x 4 B = 96-byte rows: 42 to a 4 KiB page (64 bytes left over), so 100 tokens pad to 126.
  const kv = new VirtualKVManager({ layers: 1, kvHeads: 3, headDim: 8, maxSlots: 2, maxContext: 100, type: F32, pageSize: 4096, budgetBytes: 1 << 20 });
  try {
    assert.equal(kv.paddedContext, 126);
    assert.equal(kv.view().maxContext, 126);
    assert.equal(kv.view().rowsPerPage, 42);
    const slot = kv.allocSlot()!;
    assert.equal(slot, 0);
    assert.throws(() => kv.step([101]), code('ERR_KV_CONTEXT_OVERFLOW'));
    assert.ok(kv.step([100]).ok);
    assert.equal(kv.slotPages(slot, 0, 'v').length, 3); // ceil(100 / 42)
  } finally {
    kv.close();
  }
});

test('the default page size follows the budget and the mapping limit', () => {
  const linuxDefault = 65530;
  assert.equal(defaultPageSize(256 << 20, 1 << 20, linuxDefault), 64 << 10);
  assert.equal(defaultPageSize(2 ** 30, 1 << 20, linuxDefault), 64 << 10);
  assert.equal(defaultPageSize(2 ** 32, 1 << 20, linuxDefault), 256 << 10);
  assert.equal(defaultPageSize(2 ** 32, 1 << 20, 262144), 64 << 10, 'a raised vm.max_map_count allows smaller pages');
  assert.equal(defaultPageSize(2 ** 36, 8 << 20, linuxDefault), 2 << 20);
  assert.equal(defaultPageSize(16 << 20, 8 << 10, linuxDefault), 8 << 10);
  for (const limit of [linuxDefault, 262144, maxMapCount()]) {
    for (const budget of [2 ** 20, 2 ** 28, 2 ** 32, 2 ** 36]) {
      const page = defaultPageSize(budget, 1 << 20, limit);
      assert.ok(page % 4096 === 0 && page <= 2 << 20);
      // Two VMAs per page at worst, with room for the rest of the process.
      assert.ok(2 * (budget / page) <= limit - 8192 || page === 2 << 20, `${budget} / ${page} under ${limit}`);
    }
  }
});
