// Each slot's pages in the stats, page by page: which ones another slot maps too and which ones the prefix
// cache holds, on the virtual and the paged manager (the static one has a single page per range that is
// only ever its own). The truth is the scenario itself: which blocks were attached or shared, and what a
// compaction wrote into.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PagedKVManager, StaticKVManager, VirtualKVManager, type KVCacheManager, type SlotStats } from '../../src/kv/index.js';
import type { PageRun } from '../../src/kv/stats.js';
import { virtualUnavailable } from '../engine/engine-helpers.js';

// f32 rows of 2 x 8 values: 64 bytes, so 64 rows to a 4 KiB page and to a paged block of 64 tokens.
const ROWS = 64;
const SHAPE = { layers: 2, kvHeads: 2, headDim: 8, maxSlots: 4, maxContext: 512, type: { k: 'f32', v: 'f32' } as const };
const RANGES = 4;
type Kind = 'virtual' | 'paged';

function make(kind: Kind): KVCacheManager {
  if (kind === 'virtual') return new VirtualKVManager({ ...SHAPE, pageSize: 4096, budgetBytes: 64 * 4096 });
  return new PagedKVManager({ ...SHAPE, blockSize: ROWS, budgetBytes: 64 * 4096 });
}

function grow(kv: KVCacheManager, slot: number, tokens: number): void {
  const lens = new Int32Array(SHAPE.maxSlots);
  lens[slot] = tokens;
  assert.equal(kv.step(lens).ok, true);
}

/** Slot a with 3 pages and 8 rows, and slot d sharing all of them as its prefix (no prefix cache). */
function sharingPair(kv: KVCacheManager): [number, number] {
  const a = kv.allocSlot()!;
  grow(kv, a, 3 * ROWS + 8);
  const d = kv.allocSlot()!;
  assert.equal(kv.sharePrefix(a, d, 3 * ROWS + 8).ok, true);
  return [a, d];
}

function slotOf(kv: KVCacheManager, slot: number): SlotStats {
  const s = kv.stats().slots.find((x) => x.slot === slot);
  assert.ok(s, `slot ${slot} is in the stats`);
  return s;
}

const own = (pages: number): PageRun => ({ pages, shared: false, cached: false });
const shared = (pages: number): PageRun => ({ pages, shared: true, cached: false });
const cached = (pages: number): PageRun => ({ pages, shared: false, cached: true });
const sharedCached = (pages: number): PageRun => ({ pages, shared: true, cached: true });

for (const kind of ['virtual', 'paged'] as const) {
  const skip = kind === 'virtual' ? virtualUnavailable() ?? false : false;

  test(`${kind}: the geometry of a slot's range (rows a page holds, pages at maxContext, ranges)`, { skip }, () => {
    const kv = make(kind);
    try {
      const s = kv.stats();
      assert.equal(s.rowsPerPage, ROWS);
      assert.equal(s.rangePages, SHAPE.maxContext / ROWS);
      assert.equal(s.ranges, RANGES);
      assert.equal(s.maxSlots, SHAPE.maxSlots);
      assert.deepEqual(s.slots, []);
    } finally {
      kv.close();
    }
  });

  test(`${kind}: two slots that start with the same cached blocks both report them as shared and cached`, { skip }, () => {
    const kv = make(kind);
    try {
      // a computes 200 tokens (3 full pages and 8 rows); the cache keeps its first two blocks.
      const a = kv.allocSlot()!;
      grow(kv, a, 200);
      const blocks = [kv.blocks.retain(a, 0), kv.blocks.retain(a, 1)];
      assert.deepEqual(slotOf(kv, a).pageRuns, [cached(2), own(2)], 'the cache holds a\'s first two pages; nobody else maps them');
      assert.equal(slotOf(kv, a).cachedPages, 2 * RANGES);
      assert.equal(slotOf(kv, a).sharedPages, 0);
      kv.freeSlot(a);

      // b and c start from those blocks and grow past them: the blocks are mapped into both.
      const b = kv.allocSlot()!;
      assert.equal(kv.blocks.attach(b, blocks).ok, true);
      grow(kv, b, 3 * ROWS + 5);
      const c = kv.allocSlot()!;
      assert.equal(kv.blocks.attach(c, blocks).ok, true);
      grow(kv, c, 2 * ROWS + 1);
      const sb = slotOf(kv, b);
      const sc = slotOf(kv, c);
      assert.deepEqual(sb.pageRuns, [sharedCached(2), own(2)]);
      assert.deepEqual(sc.pageRuns, [sharedCached(2), own(1)]);
      for (const s of [sb, sc]) {
        assert.equal(s.sharedPages, 2 * RANGES);
        assert.equal(s.cachedPages, 2 * RANGES);
      }
      for (const s of [sb, sc]) assert.equal(s.pageRuns.reduce((n, r) => n + r.pages, 0) * RANGES, s.pages, 'the runs cover the mapped pages');

      // With c gone, b's blocks are no longer shared, but the cache still holds them.
      kv.freeSlot(c);
      assert.deepEqual(slotOf(kv, b).pageRuns, [cached(2), own(2)]);
      // And once the cache lets go, b's pages are its own.
      for (const block of blocks) kv.blocks.release(block);
      assert.deepEqual(slotOf(kv, b).pageRuns, [own(4)]);
      assert.equal(slotOf(kv, b).cachedPages, 0);
    } finally {
      kv.close();
    }
  });

  test(`${kind}: the runs follow growth: rows within the last page change nothing, a new page shows up at once`, { skip }, () => {
    const kv = make(kind);
    try {
      const a = kv.allocSlot()!;
      grow(kv, a, ROWS + 1);
      kv.blocks.retain(a, 0);
      assert.deepEqual(slotOf(kv, a).pageRuns, [cached(1), own(1)]);
      grow(kv, a, 2 * ROWS);
      assert.deepEqual(slotOf(kv, a).pageRuns, [cached(1), own(1)]);
      assert.equal(slotOf(kv, a).tokens, 2 * ROWS);
      grow(kv, a, 2 * ROWS + 1);
      assert.deepEqual(slotOf(kv, a).pageRuns, [cached(1), own(2)]);
      assert.equal(slotOf(kv, a).pages, 3 * RANGES);
    } finally {
      kv.close();
    }
  });

  test(`${kind}: a shared prefix without the cache is shared on both slots; the copied partial page is not`, { skip }, () => {
    const kv = make(kind);
    try {
      const [a, d] = sharingPair(kv);
      assert.deepEqual(slotOf(kv, a).pageRuns, [shared(3), own(1)]);
      assert.deepEqual(slotOf(kv, d).pageRuns, [shared(3), own(1)]);
      assert.equal(slotOf(kv, d).sharedPages, 3 * RANGES);
    } finally {
      kv.close();
    }
  });

  test(`${kind}: compaction counts the rows it dropped per slot, and what it wrote into stops being shared`, { skip }, () => {
    const kv = make(kind);
    try {
      const [a, d] = sharingPair(kv);
      // d keeps 150 rows: layer 0 keeps its first 150 in place; layer 1 keeps rows 0..63 and moves rows
      // 100..185 down into pages 1 and 2, so those pages of layer 1 are written.
      const identity = Int32Array.from({ length: 150 }, (_, i) => i);
      const moved = Int32Array.from({ length: 150 }, (_, i) => (i < ROWS ? i : i + 36));
      assert.equal(kv.compact(d, [identity, moved]).ok, true);
      const sd = slotOf(kv, d);
      assert.equal(sd.tokens, 150);
      assert.equal(sd.evictedRows, 3 * ROWS + 8 - 150);
      assert.equal(sd.compactions, 1);
      assert.equal(slotOf(kv, a).evictedRows, 0, 'the other sharer lost nothing');
      if (kind === 'virtual') {
        // Each (layer, K/V) range copies only its own pages written into: layer 0's pages 1 and 2 stay
        // shared, so every index still has a shared page somewhere.
        assert.deepEqual(sd.pageRuns, [shared(3)]);
        assert.equal(sd.sharedPages, RANGES + 2 * 2);
        assert.deepEqual(slotOf(kv, a).pageRuns, [shared(3), own(1)]);
      } else {
        // One block spans every layer: a block written into in any layer is copied whole.
        assert.deepEqual(sd.pageRuns, [shared(1), own(2)]);
        assert.equal(sd.sharedPages, RANGES);
        assert.deepEqual(slotOf(kv, a).pageRuns, [shared(1), own(3)]);
      }

      // A second compaction adds up; a fork carries the count; a slot taken again starts from none.
      assert.equal(kv.compact(d, Int32Array.from({ length: 100 }, (_, i) => i)).ok, true);
      assert.equal(slotOf(kv, d).evictedRows, 3 * ROWS + 8 - 100);
      assert.equal(slotOf(kv, d).compactions, 2);
      const e = kv.allocSlot()!;
      assert.equal(kv.sharePrefix(d, e, 100).ok, true);
      assert.equal(slotOf(kv, e).evictedRows, 3 * ROWS + 8 - 100);
      assert.equal(slotOf(kv, e).compactions, 2);
      kv.freeSlot(d);
      kv.freeSlot(e);
      kv.freeSlot(a);
      const again = kv.allocSlot()!;
      grow(kv, again, 10);
      assert.equal(slotOf(kv, again).evictedRows, 0);
      assert.equal(slotOf(kv, again).compactions, 0);
    } finally {
      kv.close();
    }
  });
}

test('virtual: an idle slot keeps its pages as its own, and the runs say so', { skip: virtualUnavailable() ?? false }, () => {
  const kv = make('virtual');
  try {
    const a = kv.allocSlot()!;
    grow(kv, a, 2 * ROWS + 3);
    kv.freeSlot(a);
    const s = slotOf(kv, a);
    assert.equal(s.state, 'idle');
    assert.deepEqual(s.pageRuns, [own(3)]);
    assert.equal(s.evictedRows, 0);
  } finally {
    kv.close();
  }
});

test('static: one page per range, the slot\'s own whatever the cache holds; compaction is counted', () => {
  const kv = new StaticKVManager({ ...SHAPE, prefault: false });
  try {
    const s0 = kv.stats();
    assert.equal(s0.rowsPerPage, SHAPE.maxContext);
    assert.equal(s0.rangePages, 1);
    const a = kv.allocSlot()!;
    grow(kv, a, 40);
    kv.blocks.retain(a, 0);
    const b = kv.allocSlot()!;
    grow(kv, b, 30);
    assert.equal(kv.compact(b, Int32Array.from({ length: 20 }, (_, i) => i + 10)).ok, true);
    const stats = kv.stats();
    for (const s of stats.slots) assert.deepEqual(s.pageRuns, [own(1)]);
    assert.equal(stats.slots.find((s) => s.slot === b)!.evictedRows, 10);
    assert.equal(stats.slots.find((s) => s.slot === a)!.evictedRows, 0);
  } finally {
    kv.close();
  }
});
