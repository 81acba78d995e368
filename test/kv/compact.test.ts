// compact() on every manager: keep lists per layer and KV head (each head's slice moves on its own),
// hole-filling lists (keep[i] >= i, not ascending), the checks that refuse bad lists (the same messages
// from the TS managers and the native one), pages given back in the same call, and copy-on-write of
// pages shared with another slot (only pages written into are copied).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PagedKVManager, StaticKVManager, VirtualKVManager, type KeepPositions, type KVCacheManager } from '../../src/kv/index.js';
import { headSliceBytes, kvFormat, type KVFormatName } from '../../src/kv/format.js';
import { loadVmem } from '../../src/kv/native-vmem.js';
import { ascendingKeep, holeFillingKeep } from './keep-lists.js';
import { rowBytesAt } from './kv-rows.js';
import { makeRng } from './rng.js';

const LAYERS = 2;
const HEADS = 4;
const HEAD_DIM = 32;
const FORMATS: readonly KVFormatName[] = ['f32', 'f16', 'q8_0'];
type Kind = 'virtual' | 'paged' | 'static';
const KINDS: readonly Kind[] = ['virtual', 'paged', 'static'];

function make(kind: Kind, format: KVFormatName, shape: { kvHeads?: number; headDim?: number } = {}): KVCacheManager {
  const s = { layers: LAYERS, kvHeads: HEADS, headDim: HEAD_DIM, maxSlots: 4, maxContext: 512, type: { k: format, v: format }, ...shape };
  if (kind === 'virtual') return new VirtualKVManager({ ...s, pageSize: 4096, budgetBytes: 1 << 22 });
  if (kind === 'paged') return new PagedKVManager({ ...s, blockSize: 16, budgetBytes: 1 << 22 });
  return new StaticKVManager(s);
}

function lens(slots: Record<number, number>): Int32Array {
  const out = new Int32Array(4);
  for (const [slot, tokens] of Object.entries(slots)) out[Number(slot)] = tokens;
  return out;
}

function sliceBytes(kv: KVCacheManager): number {
  return headSliceBytes(kvFormat(kv.shape.type.k), kv.shape.headDim)!;
}

/** The bytes head `head` of (layer, K/V) holds for token `id`: every byte depends on all four. */
function pattern(bytes: number, layer: number, v: boolean, head: number, id: number): Uint8Array {
  const tag = ((layer * 2 + (v ? 1 : 0)) * HEADS + head) * 65536 + id;
  return Uint8Array.from({ length: bytes }, (_, j) => (Math.imul(tag + 1, 0x9e3779b1) ^ Math.imul(j + 1, 0x85ebca6b)) >>> 24);
}

/** Writes token ids[pos] into every head of every row of slot, positions 0..ids.length-1. */
function fill(kv: KVCacheManager, slot: number, tokens: number, idOf: (pos: number) => number): void {
  const slice = sliceBytes(kv);
  for (let layer = 0; layer < LAYERS; layer++) {
    for (const v of [false, true]) {
      for (let pos = 0; pos < tokens; pos++) {
        const [a, at] = rowBytesAt(kv, slot, layer, pos, v);
        for (let h = 0; h < kv.shape.kvHeads; h++) a.set(pattern(slice, layer, v, h, idOf(pos)), at + h * slice);
      }
    }
  }
}

/** Per layer, per head, the token id each position should hold. */
type Content = number[][][];

function contentOf(tokens: number, idOf: (pos: number) => number): Content {
  return Array.from({ length: LAYERS }, () => Array.from({ length: HEADS }, () => Array.from({ length: tokens }, (_, p) => idOf(p))));
}

/** What compaction with `keep` makes of content. */
function applyKeep(content: Content, keep: KeepPositions): Content {
  return content.map((heads, layer) => heads.map((ids, head) => {
    const list = keep instanceof Int32Array ? keep : keep[layer] instanceof Int32Array ? keep[layer] : (keep[layer] as readonly Int32Array[])[head]!;
    return Array.from(list, (p) => ids[p]!);
  }));
}

function expectContent(kv: KVCacheManager, slot: number, content: Content, what: string): void {
  const slice = sliceBytes(kv);
  assert.equal(kv.tokens(slot), content[0]![0]!.length, `${what}: tokens`);
  content.forEach((heads, layer) => heads.forEach((ids, head) => ids.forEach((id, pos) => {
    for (const v of [false, true]) {
      const [a, at] = rowBytesAt(kv, slot, layer, pos, v);
      const got = a.subarray(at + head * slice, at + (head + 1) * slice);
      assert.deepEqual(got, pattern(slice, layer, v, head, id), `${what}: layer ${layer} ${v ? 'V' : 'K'} head ${head} position ${pos} should hold token ${id}`);
    }
  })));
}

/** Pages a compaction from `from` to `to` tokens gives back when the slot's pages are private. */
function pagesFreed(kv: KVCacheManager, from: number, to: number): number {
  return kv.kind === 'static' ? 0 : kv.pagesForTokens(from) - kv.pagesForTokens(to);
}

for (const kind of KINDS) {
  for (const format of FORMATS) {
    test(`${kind}, ${format}: per-layer-per-head keep lists move each head's slice on its own, and the tail pages come back in the same call`, () => {
      const kv = make(kind, format);
      try {
        const a = kv.allocSlot()!, other = kv.allocSlot()!;
        assert.ok(kv.step(lens({ [a]: 200, [other]: 150 })).ok);
        fill(kv, a, 200, (p) => p);
        fill(kv, other, 150, (p) => 5000 + p);
        const rng = makeRng(11);
        const kept = 70;
        // Layer 0 head 0 keeps its first rows in place: its bytes must not move while the others do.
        const keep = Array.from({ length: LAYERS }, (_, layer) => Array.from({ length: HEADS }, (_, head) =>
          layer === 0 && head === 0 ? Int32Array.from({ length: kept }, (_, i) => i)
            : head === 2 ? holeFillingKeep(rng, 200, kept) : ascendingKeep(rng, 200, kept)));
        assert.notDeepEqual(keep[1]![1], keep[1]![3]);
        const free = kv.freePages();
        const result = kv.compact(a, keep);
        assert.equal(result.ok, true);
        assert.equal(result.pagesMapped, 0, 'nothing shared, nothing copied');
        expectContent(kv, a, applyKeep(contentOf(200, (p) => p), keep), 'compacted slot');
        expectContent(kv, other, contentOf(150, (p) => 5000 + p), 'other slot');
        assert.equal(kv.freePages() - free, pagesFreed(kv, 200, kept));
        assert.equal(kv.stats().freePages, kv.freePages());
        if (kind !== 'static') assert.equal(kv.stats().slots.find((s) => s.slot === a)!.pages, kv.pagesForTokens(kept));
        // The slot grows again from its new length.
        assert.ok(kv.step(lens({ [a]: 90 })).ok);
        assert.equal(kv.tokens(a), 90);
      } finally {
        kv.close();
      }
    });

    test(`${kind}, ${format}: a layer keeping fewer rows pads its list with rows left in place, even rows copied forward`, () => {
      const kv = make(kind, format);
      try {
        const a = kv.allocSlot()!;
        assert.ok(kv.step(lens({ [a]: 40 })).ok);
        fill(kv, a, 40, (p) => p);
        // Layer 0 keeps 35 rows; layer 1 keeps 30 (rows 30..39 moved into its holes 0..9), then leaves rows
        // 30..34 where they are: don't-care rows, copied forward just before.
        const layer0 = Int32Array.from({ length: 35 }, (_, i) => i + 5);
        const layer1 = Int32Array.from({ length: 35 }, (_, i) => (i < 10 ? 30 + i : i));
        assert.ok(kv.compact(a, [layer0, layer1]).ok);
        const content = applyKeep(contentOf(40, (p) => p), [layer0, layer1]);
        expectContent(kv, a, content, 'padded lists');
      } finally {
        kv.close();
      }
    });

    test(`${kind}, ${format}: hole-filling keep lists (tail rows moved into the holes) for all layers, per layer and per head`, () => {
      const kv = make(kind, format);
      try {
        const a = kv.allocSlot()!;
        assert.ok(kv.step(lens({ [a]: 300 })).ok);
        fill(kv, a, 300, (p) => p);
        let content = contentOf(300, (p) => p);
        let tokens = 300;
        // Drop rows 3, 40 and 41 of every layer: rows 299, 298, 297 take their places.
        const drop3 = Int32Array.from({ length: 297 }, (_, i) => (i === 3 ? 299 : i === 40 ? 298 : i === 41 ? 297 : i));
        const rng = makeRng(12);
        const steps: KeepPositions[] = [
          drop3,
          Array.from({ length: LAYERS }, () => holeFillingKeep(rng, 297, 250)),
          Array.from({ length: LAYERS }, () => Array.from({ length: HEADS }, () => holeFillingKeep(rng, 250, 180))),
        ];
        for (const keep of steps) {
          const kept = keep instanceof Int32Array ? keep.length : keep[0] instanceof Int32Array ? keep[0].length : (keep[0] as Int32Array[])[0]!.length;
          const free = kv.freePages();
          assert.ok(kv.compact(a, keep).ok);
          content = applyKeep(content, keep);
          expectContent(kv, a, content, `after keeping ${kept}`);
          assert.equal(kv.freePages() - free, pagesFreed(kv, tokens, kept));
          tokens = kept;
        }
      } finally {
        kv.close();
      }
    });
  }
}

/** Bad keep lists for a slot of 10 tokens, with what the refusal says. */
const INVALID: readonly { what: string; keep: KeepPositions; message: RegExp }[] = (() => {
  const ids = (...p: number[]) => Int32Array.from(p);
  const heads = (...lists: Int32Array[]) => lists;
  const fine = () => heads(ids(0, 1), ids(0, 2), ids(3, 1), ids(9, 8));
  return [
    { what: 'duplicate', keep: ids(0, 5, 5), message: /^compact: keep keeps position 5 twice \(entries 1 and 2\)$/ },
    { what: 'moves a row back', keep: ids(1, 0), message: /^compact: keep\[1\] = 0 would move a row back \(keep\[i\] must be >= i\)$/ },
    { what: 'past the tokens', keep: ids(0, 10), message: /^compact: keep\[1\] = 10 is outside the slot's 10 tokens$/ },
    { what: 'negative', keep: ids(-1), message: /^compact: keep\[0\] = -1 is outside the slot's 10 tokens$/ },
    { what: 'more than the slot holds', keep: Int32Array.from({ length: 11 }, (_, i) => i), message: /^compact: cannot keep 11 tokens of slot 0, which holds 10$/ },
    { what: 'per layer, duplicate', keep: [ids(0, 1), ids(4, 4)], message: /^compact: keep\[1\] keeps position 4 twice \(entries 0 and 1\)$/ },
    { what: 'per layer, too many lists', keep: [ids(0), ids(0), ids(0)], message: /^compact: got 3 keep lists for 2 layers$/ },
    { what: 'per layer, different lengths', keep: [ids(0, 1), ids(0)], message: /^compact: every keep list must keep the same number of tokens \(keep\[0\] keeps 2, keep\[1\] keeps 1\)$/ },
    { what: 'per head, too few heads', keep: [fine(), heads(ids(0, 1), ids(0, 1), ids(0, 1))], message: /^compact: keep\[1\] has 3 lists for 4 KV heads$/ },
    { what: 'per head, different lengths', keep: [fine(), heads(ids(0, 1), ids(0, 1), ids(0, 1), ids(0, 1, 2))], message: /^compact: every keep list must keep the same number of tokens \(keep\[0\]\[0\] keeps 2, keep\[1\]\[3\] keeps 3\)$/ },
    { what: 'per head, moves a row back', keep: [fine(), heads(ids(0, 1), ids(0, 1), ids(1, 0), ids(0, 1))], message: /^compact: keep\[1\]\[2\]\[1\] = 0 would move a row back \(keep\[i\] must be >= i\)$/ },
    { what: 'per head, duplicate', keep: [fine(), heads(ids(0, 1), ids(7, 7), ids(0, 1), ids(0, 1))], message: /^compact: keep\[1\]\[1\] keeps position 7 twice \(entries 0 and 1\)$/ },
    { what: 'per head, out of range', keep: [heads(ids(0, 1), ids(0, 1), ids(0, 1), ids(0, 12)), fine()], message: /^compact: keep\[0\]\[3\]\[1\] = 12 is outside the slot's 10 tokens$/ },
    { what: 'mixed nesting', keep: [ids(0, 1), fine()] as unknown as KeepPositions, message: /^compact: keep lists must be all per layer \(Int32Array\) or all per layer and KV head \(arrays of Int32Array\)$/ },
  ];
})();

/** Checks an ERR_KV_INVALID_ARGUMENT error's message (TS KVError or native Error alike). */
function refusal(message: RegExp, what = ''): (e: unknown) => boolean {
  return (e) => {
    assert.equal((e as { code?: string }).code, 'ERR_KV_INVALID_ARGUMENT', what);
    assert.match((e as Error).message, message, what);
    return true;
  };
}

for (const kind of KINDS) {
  test(`${kind}: bad keep lists are refused with a message naming the list and entry, and nothing changes`, () => {
    const kv = make(kind, 'f16');
    try {
      const a = kv.allocSlot()!;
      assert.equal(a, 0);
      assert.ok(kv.step(lens({ [a]: 10 })).ok);
      fill(kv, a, 10, (p) => p);
      const free = kv.freePages();
      for (const { what, keep, message } of INVALID) assert.throws(() => kv.compact(a, keep), refusal(message, what));
      expectContent(kv, a, contentOf(10, (p) => p), 'after the refusals');
      assert.equal(kv.freePages(), free);
      // Valid lists of the same shapes still work.
      assert.ok(kv.compact(a, [[Int32Array.of(0, 9), Int32Array.of(8, 1), Int32Array.of(0, 1), Int32Array.of(5, 6)], [Int32Array.of(0, 1), Int32Array.of(0, 2), Int32Array.of(3, 1), Int32Array.of(9, 8)]]).ok);
      assert.equal(kv.tokens(a), 2);
    } finally {
      kv.close();
    }
  });

  test(`${kind}: per-head keep lists are refused when the format's blocks straddle heads; per-layer lists still work`, () => {
    // q8_0 blocks are 32 values; heads of 16 put two heads in one block.
    const kv = make(kind, 'q8_0', { kvHeads: 2, headDim: 16 });
    try {
      const a = kv.allocSlot()!;
      assert.ok(kv.step(lens({ [a]: 10 })).ok);
      const list = Int32Array.of(0, 5);
      assert.throws(() => kv.compact(a, [[list, list], [list, list]]), refusal(
        /^compact: per-head keep lists need rows that split by KV head, but the K format q8_0 stores blocks of 32 values across heads of 16; keep one list per layer instead$/));
      assert.equal(kv.tokens(a), 10);
      assert.ok(kv.compact(a, [list, list]).ok);
      assert.equal(kv.tokens(a), 2);
    } finally {
      kv.close();
    }
  });
}

test('the native manager checks keep lists itself, with the TS messages, and validates head slices at construction', () => {
  const options = { layers: 2, kvHeads: 4, headDim: 32, tokenBytes: 256, rowGroup: 1, maxSlots: 1, maxContext: 64, pageSize: 4096, budgetBytes: 1 << 20, deferredReclaim: true, trimOnFree: false };
  const { VirtualKV } = loadVmem();
  assert.throws(() => new VirtualKV({ ...options, keyHeadBytes: 65 }), refusal(/^keyHeadBytes x kvHeads \(65 x 4\) is more than a row's 256 bytes$/));
  assert.throws(() => new VirtualKV({ ...options, keyHeadBytes: 64, valueHeadBytes: 65 }), /valueHeadBytes x kvHeads/);
  // Without head slices, per-head lists (kept x layers x kvHeads) are refused; whole rows still move.
  const bare = new VirtualKV(options);
  try {
    assert.equal(bare.allocSlot(), 0);
    assert.ok(bare.step(Int32Array.of(20)).ok);
    assert.throws(() => bare.compact(0, new Int32Array(2 * 2 * 4).fill(0), 2), /per-head keep lists need rows that split by KV head/);
    assert.throws(() => bare.compact(0, new Int32Array(5), 2), refusal(/^compact: keep has 5 positions; expected kept \(2\), kept x layers or kept x layers x kvHeads$/));
    assert.ok(bare.compact(0, Int32Array.of(0, 1, 5, 6), 2).ok);
  } finally {
    bare.close();
  }
  // The same bad lists give the same messages from C++ (virtual) and TS (paged).
  const virtual = make('virtual', 'f16');
  const paged = make('paged', 'f16');
  try {
    for (const kv of [virtual, paged]) assert.ok(kv.step(lens({ [kv.allocSlot()!]: 10 })).ok);
    const messageOf = (kv: KVCacheManager, keep: KeepPositions): string => {
      try {
        kv.compact(0, keep);
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    for (const { what, keep } of INVALID) assert.equal(messageOf(virtual, keep), messageOf(paged, keep), what);
  } finally {
    virtual.close();
    paged.close();
  }
});

/** Pool pages (virtual) or block ids (paged, one per range) of slot, per range, in position order. */
function pagesOf(kv: KVCacheManager, slot: number): number[][] {
  if (kv instanceof VirtualKVManager) {
    return Array.from({ length: LAYERS * 2 }, (_, r) => Array.from(kv.slotPages(slot, r >> 1, r % 2 === 0 ? 'k' : 'v')));
  }
  const table = Array.from((kv as PagedKVManager).blockTable(slot));
  return Array.from({ length: LAYERS * 2 }, () => table);
}

for (const kind of ['virtual', 'paged'] as const) {
  test(`${kind}: compacting a slot that shares its first pages copies only the pages written into; the other slot keeps its bytes`, () => {
    // f16, 4 heads of 32: 256-byte rows, 16 a page (virtual, 4 KiB) or a block (paged, 16 tokens).
    const kv = make(kind, 'f16');
    try {
      const a = kv.allocSlot()!, b = kv.allocSlot()!, c = kv.allocSlot()!;
      assert.ok(kv.step(lens({ [a]: 200 })).ok);
      fill(kv, a, 200, (p) => p);
      // b and c map a's 12 full pages and copy the partial 13th.
      assert.ok(kv.sharePrefix(a, b, 200).ok);
      assert.ok(kv.sharePrefix(a, c, 200).ok);
      const aPages = pagesOf(kv, a);
      const original = contentOf(200, (p) => p);

      // b keeps rows 0..47 in place (pages 0-2) and fills rows 48..99 (pages 3-6) from rows 100..199.
      const rng = makeRng(13);
      const keep = Array.from({ length: LAYERS }, () => Array.from({ length: HEADS }, () =>
        Int32Array.from([...Array.from({ length: 48 }, (_, i) => i), ...Array.from(ascendingKeep(rng, 100, 52), (p) => 100 + p)])));
      let free = kv.freePages();
      const result = kv.compact(b, keep);
      assert.equal(result.ok, true);
      // Pages 3..6 were shared and are written: copied, in each of the 4 ranges.
      assert.equal(result.pagesMapped, 4 * 4);
      // Pages 7..11 stay a's and c's (not freed); the private partial page 12 goes back: 1 a range.
      assert.equal(kv.freePages() - free, 1 * 4 - 4 * 4);
      const bPages = pagesOf(kv, b);
      for (let r = 0; r < 4; r++) {
        assert.deepEqual(bPages[r]!.slice(0, 3), aPages[r]!.slice(0, 3), 'pages whose rows stay put stay shared');
        for (let i = 3; i < 7; i++) assert.notEqual(bPages[r]![i], aPages[r]![i], 'pages written into are private copies');
        assert.equal(bPages[r]!.length, 7);
      }
      expectContent(kv, a, original, 'the sharing slot');
      expectContent(kv, c, original, 'the other sharer');
      expectContent(kv, b, applyKeep(original, keep), 'the compacted slot');

      // c drops rows 195 and 196 (rows 198 and 199 fill the holes): only the private last page is written,
      // so nothing is copied and all 12 full pages stay shared. O(dropped) work, nothing to map.
      const drop = Int32Array.from({ length: 198 }, (_, i) => (i === 195 ? 199 : i === 196 ? 198 : i));
      free = kv.freePages();
      const holes = kv.compact(c, drop);
      assert.equal(holes.ok, true);
      assert.equal(holes.pagesMapped, 0);
      assert.equal(kv.freePages(), free);
      const cPages = pagesOf(kv, c);
      for (let r = 0; r < 4; r++) assert.deepEqual(cPages[r]!.slice(0, 12), aPages[r]!.slice(0, 12));
      expectContent(kv, c, applyKeep(original, drop), 'hole-filled sharer');
      expectContent(kv, a, original, 'the sharing slot, again');
      assert.equal(kv.stats().slots.find((s) => s.slot === c)!.sharedPages, 12 * 4);

      // Freeing a leaves b's and c's pages intact.
      kv.freeSlot(a);
      expectContent(kv, b, applyKeep(original, keep), 'the compacted slot after the source is freed');
      expectContent(kv, c, applyKeep(original, drop), 'the hole-filled sharer after the source is freed');
    } finally {
      kv.close();
    }
  });
}
