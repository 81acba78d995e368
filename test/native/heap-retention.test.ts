// Freed heap memory stays mapped once the KV tiers ask for it (native/heap_retention.cc): block-sized
// buffers freed together and allocated again take no fresh pages from the kernel. By default glibc maps
// the first such buffers one by one and unmaps each when freed, so the second round faults every page
// in again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resourceUsage } from 'node:process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadNativeAddon } from '../../src/backend/native/addon.js';

const addon = loadNativeAddon();
const usesGlibc = Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const BLOCK_BYTES = 2883584; // one TinyLlama block of 64 tokens in f32
const BLOCKS = 16;

/** Minor page faults per 4 KiB page while allocating and touching BLOCKS buffers, which are then freed. */
function faultsPerPage(): number {
  const before = resourceUsage().minorPageFault;
  let held: Buffer[] = [];
  for (let i = 0; i < BLOCKS; i++) held.push(Buffer.allocUnsafe(BLOCK_BYTES).fill(i));
  const faults = resourceUsage().minorPageFault - before;
  held = [];
  collectGarbage();
  return faults / ((BLOCKS * BLOCK_BYTES) / 4096);
}

test('retainFreedHeap checks its argument', () => {
  assert.throws(() => addon.retainFreedHeap(-1), /bytes/);
  assert.throws(() => addon.retainFreedHeap(2 ** 31), /bytes/);
  assert.throws(() => addon.retainFreedHeap(1.5), /bytes/);
});

test('after retainFreedHeap, buffers freed together are reused without faulting pages in again', { skip: usesGlibc ? false : 'only glibc has these allocator settings' }, () => {
  assert.equal(addon.retainFreedHeap(256 * 2 ** 20), true);
  faultsPerPage(); // the first round maps the memory
  const again = faultsPerPage();
  assert.ok(again < 0.2, `${again.toFixed(3)} faults per page on reuse`);
});
