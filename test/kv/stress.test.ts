// Thousands of random alloc / grow / share / compact / free operations on every manager (keep lists
// ascending or hole filling), and the prefix cache's block operations (retain a slot's block, attach
// cached blocks to a new slot, release them), checked against a plain model: which slots are in use,
// which token (by id) each slot holds at each position of each layer, and what each cached block holds.
// For the virtual manager the page accounting is also checked after every operation: refcounts rebuilt
// from the slots' page tables and the cached blocks' pages, the free count, and shared pages lying below
// both slots' tokens.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isKVError, PagedKVManager, StaticKVManager, VirtualKVManager, type KVCacheManager } from '../../src/kv/index.js';
import { readToken, writeToken } from './kv-rows.js';
import { ascendingKeep, holeFillingKeep } from './keep-lists.js';
import { makeRng } from './rng.js';
import type { KVType } from '../../src/kv/format.js';

/** These tests count bytes for f32 rows (4 bytes a value). */
const F32: KVType = { k: 'f32', v: 'f32' };

const SHAPE = { layers: 2, kvHeads: 1, headDim: 16, maxSlots: 8, maxContext: 512, type: F32 };
const TOKEN_BYTES = 64;
const PAGE = 4096;
const OPS = 3000;

interface Model {
  /** slot -> per layer, the token id at each position */
  content: Map<number, number[][]>;
  /** cached block id -> per layer, the token ids it holds, and (virtual) the pool pages it references */
  cached: Map<number, { layers: number[][]; pages: number[]; refs: number }>;
  nextId: number;
}

function checkVirtualPages(kv: VirtualKVManager, model: Model): void {
  const refs = kv.native.refCounts();
  const rebuilt = new Uint32Array(refs.length);
  for (const block of model.cached.values()) for (const p of block.pages) rebuilt[p]! += block.refs;
  const stats = kv.stats();
  for (const s of stats.slots) {
    const fullPages = Math.floor((s.tokens * TOKEN_BYTES) / PAGE);
    for (let layer = 0; layer < SHAPE.layers; layer++) {
      for (const kind of ['k', 'v'] as const) {
        const pages = kv.slotPages(s.slot, layer, kind);
        if (s.state === 'active') assert.ok(pages.length >= Math.ceil((s.tokens * TOKEN_BYTES) / PAGE), 'slot maps its tokens');
        pages.forEach((p, i) => {
          rebuilt[p]!++;
          if (refs[p]! > 1) assert.ok(i < fullPages, `shared page ${p} of slot ${s.slot} lies below its tokens`);
        });
      }
    }
  }
  assert.deepEqual(rebuilt, refs, 'refcounts match the page tables');
  assert.equal(stats.freePages, refs.filter((r) => r === 0).length, 'free count');
}

function checkSlot(kv: KVCacheManager, model: Model, slot: number): void {
  const layers = model.content.get(slot)!;
  assert.equal(kv.tokens(slot), layers[0]!.length, `tokens of slot ${slot}`);
  layers.forEach((ids, layer) => {
    ids.forEach((id, pos) => assert.equal(readToken(kv, slot, layer, pos), id, `slot ${slot} layer ${layer} position ${pos}`));
  });
}

/** Pool pages behind block `index` of a virtual slot, in the order a cache-owned group holds them. */
function blockPages(kv: KVCacheManager, slot: number, index: number): number[] {
  if (!(kv instanceof VirtualKVManager)) return [];
  const per = kv.blocks.blockPages / (SHAPE.layers * 2);
  const pages: number[] = [];
  for (let layer = 0; layer < SHAPE.layers; layer++) {
    for (const kind of ['k', 'v'] as const) pages.push(...kv.slotPages(slot, layer, kind).slice(index * per, (index + 1) * per));
  }
  return pages;
}

function runStress(kv: KVCacheManager, seed: number): { exhausted: number; shared: number; compacted: number; attached: number } {
  const rng = makeRng(seed);
  const model: Model = { content: new Map(), cached: new Map(), nextId: 1 };
  const counts = { exhausted: 0, shared: 0, compacted: 0, attached: 0 };
  const bt = kv.blocks.blockTokens;
  const active = (): number[] => [...model.content.keys()];
  const pick = (): number | undefined => active()[rng.int(active().length)];
  const lens = new Int32Array(SHAPE.maxSlots);

  for (let op = 0; op < OPS; op++) {
    const choice = rng.next();
    let touched: number | undefined;
    if (choice < 0.15) {
      const slot = kv.allocSlot();
      if (slot === null) assert.equal(model.content.size, SHAPE.maxSlots);
      else {
        assert.ok(!model.content.has(slot));
        model.content.set(slot, Array.from({ length: SHAPE.layers }, () => []));
      }
    } else if (choice < 0.55) {
      const slot = pick();
      if (slot === undefined) continue;
      const layers = model.content.get(slot)!;
      const before = layers[0]!.length;
      const target = Math.min(SHAPE.maxContext, before + 1 + rng.int(rng.next() < 0.3 ? 200 : 8));
      lens.fill(0);
      lens[slot] = target;
      const async = rng.next() < 0.5;
      const result = async ? kv.stepAsync(lens) : kv.step(lens);
      if (async) kv.wait();
      if (!result.ok) {
        counts.exhausted++;
        assert.equal(kv.tokens(slot), before, 'a failed step changes nothing');
        assert.ok(result.pagesNeeded > result.pagesAvailable);
      } else {
        for (let pos = before; pos < target; pos++) {
          layers.forEach((ids, layer) => {
            ids.push(model.nextId);
            writeToken(kv, slot, layer, pos, model.nextId++);
          });
        }
      }
      touched = slot;
    } else if (choice < 0.67) {
      const src = pick();
      if (src === undefined) continue;
      const dst = kv.allocSlot();
      if (dst === null) continue;
      model.content.set(dst, Array.from({ length: SHAPE.layers }, () => []));
      const srcLayers = model.content.get(src)!;
      const tokens = rng.int(srcLayers[0]!.length + 1);
      const result = kv.sharePrefix(src, dst, tokens);
      if (result.ok) {
        model.content.set(dst, srcLayers.map((ids) => ids.slice(0, tokens)));
        counts.shared++;
      } else counts.exhausted++;
      checkSlot(kv, model, src);
      touched = dst;
    } else if (choice < 0.8) {
      const slot = pick();
      if (slot === undefined) continue;
      const layers = model.content.get(slot)!;
      const tokens = layers[0]!.length;
      const kept = rng.int(tokens + 1);
      const perLayer = rng.next() < 0.5;
      // Ascending lists, or hole filling (tail rows moved into the dropped rows' places).
      const holes = rng.next() < 0.5;
      const choose = (): Int32Array => (holes ? holeFillingKeep(rng, tokens, kept) : ascendingKeep(rng, tokens, kept));
      const lists = perLayer ? layers.map(() => choose()) : [choose()];
      const result = kv.compact(slot, perLayer ? lists : lists[0]!);
      if (result.ok) {
        model.content.set(slot, layers.map((ids, layer) => Array.from(lists[perLayer ? layer : 0]!, (p) => ids[p]!)));
        counts.compacted++;
      } else counts.exhausted++;
      touched = slot;
    } else if (choice < 0.84) {
      // Cache a full block of a slot.
      const slot = pick();
      if (slot === undefined) continue;
      const layers = model.content.get(slot)!;
      const full = Math.floor(layers[0]!.length / bt);
      if (full === 0) continue;
      const index = rng.int(full);
      const pages = blockPages(kv, slot, index);
      const id = kv.blocks.retain(slot, index);
      const rows = layers.map((ids) => ids.slice(index * bt, (index + 1) * bt));
      const known = model.cached.get(id);
      // The paged manager's id is the block itself: retaining a shared block again takes another reference.
      if (known) {
        assert.deepEqual(known.layers, rows, 'the same id holds the same rows');
        known.refs++;
      } else model.cached.set(id, { layers: rows, pages, refs: 1 });
    } else if (choice < 0.88) {
      // Start a new slot from cached blocks, in any order.
      const ids = [...model.cached.keys()];
      if (ids.length === 0) continue;
      const slot = kv.allocSlot();
      if (slot === null) continue;
      const chosen = Array.from({ length: 1 + rng.int(Math.min(4, ids.length)) }, () => ids[rng.int(ids.length)]!);
      const result = kv.blocks.attach(slot, chosen);
      if (result.ok) {
        model.content.set(slot, Array.from({ length: SHAPE.layers }, (_, layer) => chosen.flatMap((id) => model.cached.get(id)!.layers[layer]!)));
        counts.attached++;
      } else {
        counts.exhausted++;
        kv.freeSlot(slot);
      }
      touched = slot;
    } else if (choice < 0.91) {
      const ids = [...model.cached.keys()];
      if (ids.length === 0) continue;
      const id = ids[rng.int(ids.length)]!;
      kv.blocks.release(id);
      if (--model.cached.get(id)!.refs === 0) model.cached.delete(id);
    } else if (choice < 0.97) {
      const slot = pick();
      if (slot === undefined) continue;
      kv.freeSlot(slot);
      model.content.delete(slot);
      assert.throws(() => kv.freeSlot(slot), (e) => isKVError(e, 'ERR_KV_DOUBLE_FREE'));
    } else {
      kv.trim();
    }
    if (touched !== undefined && model.content.has(touched)) checkSlot(kv, model, touched);
    if (kv instanceof VirtualKVManager) checkVirtualPages(kv, model);
    assert.equal(kv.blocks.held(), [...model.cached.values()].reduce((n, b) => n + b.refs, 0), 'cached blocks held');
    if (op % 500 === 0) for (const slot of active()) checkSlot(kv, model, slot);
  }
  for (const slot of active()) checkSlot(kv, model, slot);
  // Letting go of everything returns the whole pool.
  for (const slot of active()) kv.freeSlot(slot);
  for (const [id, block] of model.cached) for (let r = 0; r < block.refs; r++) kv.blocks.release(id);
  model.cached.clear();
  model.content.clear();
  if (kv instanceof VirtualKVManager) {
    checkVirtualPages(kv, model);
    kv.native.reservePhysical(0);
    assert.equal(kv.native.refCounts().length, 0, 'the pool shrinks to nothing: no page is still referenced');
  } else if (kv instanceof PagedKVManager) {
    assert.equal(kv.freePages(), kv.stats().totalPages);
  }
  return counts;
}

for (const deferredReclaim of [true, false]) {
  test(`virtual manager survives ${OPS} random operations (deferredReclaim ${deferredReclaim})`, () => {
    const kv = new VirtualKVManager({ ...SHAPE, pageSize: PAGE, budgetBytes: 48 * PAGE, deferredReclaim });
    try {
      const counts = runStress(kv, deferredReclaim ? 7 : 8);
      assert.ok(counts.exhausted > 0 && counts.shared > 0 && counts.compacted > 0 && counts.attached > 0, JSON.stringify(counts));
    } finally {
      kv.close();
    }
  });
}

test(`paged manager survives ${OPS} random operations`, () => {
  const kv = new PagedKVManager({ ...SHAPE, blockSize: 32, budgetBytes: 40 * 32 * TOKEN_BYTES * 4 });
  const counts = runStress(kv, 9);
  assert.ok(counts.exhausted > 0 && counts.shared > 0 && counts.compacted > 0 && counts.attached > 0, JSON.stringify(counts));
});

test(`static manager survives ${OPS} random operations`, () => {
  const kv = new StaticKVManager(SHAPE);
  runStress(kv, 10);
});
