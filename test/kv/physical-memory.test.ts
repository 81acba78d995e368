// Physical memory follows the tokens stored: read the process's own accounting (/proc/self/smaps for the
// reserved ranges, the memfd's allocated blocks) and compare with tokens rounded up to pages per
// (slot, layer, K/V); then show that freeing and trimming gives the memory back.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { VirtualKVManager } from '../../src/kv/index.js';
import { writeToken } from './kv-rows.js';
import type { KVType } from '../../src/kv/format.js';

/** These tests count bytes for f32 rows (4 bytes a value). */
const F32: KVType = { k: 'f32', v: 'f32' };

interface Vma {
  start: number;
  end: number;
  perms: string;
  rss: number;
}

function readVmas(): Vma[] {
  const vmas: Vma[] = [];
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) /.exec(line);
    if (header) vmas.push({ start: parseInt(header[1]!, 16), end: parseInt(header[2]!, 16), perms: header[3]!, rss: 0 });
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && vmas.length > 0) vmas[vmas.length - 1]!.rss = Number(rss[1]) * 1024;
  }
  return vmas;
}

/** Bytes mapped read-write (pool pages), resident bytes, and VMA count inside [start, end). */
function mappedIn(vmas: Vma[], start: number, end: number): { mapped: number; resident: number; vmas: number } {
  let mapped = 0;
  let resident = 0;
  let count = 0;
  for (const v of vmas) {
    if (!v.perms.startsWith('rw') || v.end <= start || v.start >= end) continue;
    mapped += Math.min(v.end, end) - Math.max(v.start, start);
    if (v.start >= start && v.end <= end) resident += v.rss;
    count++;
  }
  return { mapped, resident, vmas: count };
}

const PAGE = 4096;
const SHAPE = { layers: 2, kvHeads: 2, headDim: 8, maxSlots: 4, maxContext: 512, type: F32 }; // 64-byte tokens

test('mapped and resident bytes per (slot, layer, K/V) = stored tokens rounded up to pages; free + trim returns them', () => {
  const kv = new VirtualKVManager({ ...SHAPE, pageSize: PAGE, budgetBytes: 256 * PAGE, deferredReclaim: false });
  try {
    const layout = kv.addressLayout();
    const tokens = [1, 64, 65, 300];
    const lens = new Int32Array(SHAPE.maxSlots);
    for (const [slot, n] of tokens.entries()) {
      assert.equal(kv.allocSlot(), slot);
      lens[slot] = n;
    }
    assert.ok(kv.step(lens).ok);
    for (const [slot, n] of tokens.entries()) {
      for (let pos = 0; pos < n; pos++) for (let layer = 0; layer < SHAPE.layers; layer++) writeToken(kv, slot, layer, pos, pos);
    }
    const vmas = readVmas();
    let expectedTotal = 0;
    for (let range = 0; range < layout.ranges; range++) {
      for (const [slot, n] of tokens.entries()) {
        const start = layout.baseAddress + range * layout.rangeBytes + slot * layout.slotBytes;
        const expected = Math.ceil((n * layout.tokenBytes) / PAGE) * PAGE;
        const got = mappedIn(vmas, start, start + layout.slotBytes);
        assert.equal(got.mapped, expected, `mapped bytes of slot ${slot}, range ${range}`);
        assert.equal(got.resident, expected, `resident bytes of slot ${slot}, range ${range}`);
        expectedTotal += expected;
      }
    }
    assert.equal(kv.stats().residentBytes, expectedTotal, 'memfd blocks = mapped pages');
    assert.equal(kv.stats().usedPages * PAGE, expectedTotal);

    for (let slot = 0; slot < tokens.length; slot++) kv.freeSlot(slot);
    const whole = mappedIn(readVmas(), layout.baseAddress, layout.baseAddress + layout.ranges * layout.rangeBytes);
    assert.equal(whole.mapped, 0, 'freed slots are unmapped');
    assert.equal(kv.stats().residentBytes, expectedTotal, 'free pool pages still hold memory until trimmed');
    assert.equal(kv.trim(), expectedTotal);
    assert.equal(kv.stats().residentBytes, 0, 'punched out of the memfd');
  } finally {
    kv.close();
  }
});

test('a slot growing page by page gets adjacent pool pages: one VMA per (slot, layer, K/V)', () => {
  const kv = new VirtualKVManager({ ...SHAPE, pageSize: PAGE, budgetBytes: 256 * PAGE, trimOnFree: true, deferredReclaim: false });
  try {
    const layout = kv.addressLayout();
    const a = kv.allocSlot()!;
    const b = kv.allocSlot()!;
    // Two slots growing in turns, one page per range per step, as decodes do.
    for (let t = 64; t <= 512; t += 64) assert.ok(kv.step([t, t]).ok);
    const vmas = readVmas();
    for (let range = 0; range < layout.ranges; range++) {
      for (const slot of [a, b]) {
        const start = layout.baseAddress + range * layout.rangeBytes + slot * layout.slotBytes;
        const got = mappedIn(vmas, start, start + layout.slotBytes);
        assert.equal(got.mapped, layout.slotBytes);
        assert.ok(got.vmas <= 2, `slot ${slot} range ${range}: ${got.vmas} VMAs for 8 pages`);
      }
    }
    kv.freeSlot(a);
    assert.equal(kv.stats().residentBytes, 0, 'trimOnFree: nothing was written, and freed pages are punched at once');
  } finally {
    kv.close();
  }
});
