// The tier store on its own: the run it returns, values it refuses, tiers asked in order, writes that
// never wait (a burst past the bound is dropped), and failures that end a lookup instead of failing it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeBlock } from '../../../src/kv/tiers/block-codec.js';
import { KVTierStore } from '../../../src/kv/tiers/tiered-store.js';
import { MemoryTier } from './memory-tier.js';

const BYTES = 1000;
const payload = (seed: number) => Uint8Array.from({ length: BYTES }, (_, i) => (i * 31 + seed * 7) & 255);
const store = (tiers: MemoryTier[], opts: { maxPendingBytes?: number; fingerprint?: string } = {}) =>
  new KVTierStore(tiers, { fingerprint: opts.fingerprint ?? 'model-a', blockBytes: BYTES, maxPendingBytes: opts.maxPendingBytes });

async function settled(s: KVTierStore): Promise<void> {
  while (s.stats().pendingBlocks > 0) await new Promise((r) => setTimeout(r, 1));
}

test('the run stops at the first key no tier holds, and holds the exact bytes written', async () => {
  const tier = new MemoryTier();
  const s = store([tier]);
  for (const k of ['a', 'b', 'd']) s.offer(k, payload(k.charCodeAt(0)));
  await settled(s);
  const run = await s.fetch(['a', 'b', 'c', 'd']);
  assert.deepEqual(run, [payload(97), payload(98)]);
  assert.equal(s.stats().hitBlocks, 2);
  assert.equal(s.stats().queriedBlocks, 4);
});

test('tiers are asked in order, each for what the ones before it lacked', async () => {
  const near = new MemoryTier();
  const far = new MemoryTier();
  const writer = store([far]);
  for (const k of ['a', 'b', 'c']) writer.offer(k, payload(k.charCodeAt(0)));
  await settled(writer);
  const nearWriter = store([near]);
  nearWriter.offer('a', payload(97));
  await settled(nearWriter);
  const s = store([near, far]);
  assert.deepEqual(await s.fetch(['a', 'b', 'c']), [payload(97), payload(98), payload(99)]);
  assert.equal(near.gets, 1);
  assert.equal(far.gets, 1);
});

test("another model's values, damaged ones and malformed ones are counted and end the run", async () => {
  const tier = new MemoryTier();
  tier.values.set('a', encodeBlock('a', 'model-a', payload(1)));
  tier.values.set('b', encodeBlock('b', 'model-b', payload(2)));
  const s = store([tier]);
  assert.equal((await s.fetch(['a', 'b'])).length, 1);
  assert.equal(s.stats().rejected.foreign, 1);

  tier.values.set('b', encodeBlock('a', 'model-a', payload(2)));
  assert.equal((await s.fetch(['a', 'b'])).length, 1, 'a value stored under the wrong key');
  assert.equal(s.stats().rejected.foreign, 2);

  const damaged = encodeBlock('b', 'model-a', payload(2));
  damaged[damaged.length - 1]! ^= 1;
  tier.values.set('b', damaged);
  assert.equal((await s.fetch(['a', 'b'])).length, 1);
  assert.equal(s.stats().rejected.checksum, 1);

  tier.values.set('b', Uint8Array.of(1, 2, 3));
  assert.equal((await s.fetch(['a', 'b'])).length, 1);
  assert.equal(s.stats().rejected.malformed, 1);

  tier.values.set('b', encodeBlock('b', 'model-a', payload(2).subarray(0, BYTES - 1)));
  assert.equal((await s.fetch(['a', 'b'])).length, 1, 'a payload of the wrong size');
});

test('a failing tier ends the lookup where it is and fails no caller; writes to it are counted as failures', async () => {
  const tier = new MemoryTier();
  const s = store([tier]);
  s.offer('a', payload(1));
  await settled(s);
  tier.failing = true;
  assert.deepEqual(await s.fetch(['a']), []);
  s.offer('b', payload(2));
  await settled(s);
  assert.equal(s.stats().failures, 2);
  assert.equal(s.stats().writtenBlocks, 1);
  tier.failing = false;
  assert.equal((await s.fetch(['a'])).length, 1, 'it serves again once it is back');
});

test('offers never wait: past the byte bound they are dropped and counted', async () => {
  const tier = new MemoryTier();
  tier.delayMs = 20;
  const s = store([tier], { maxPendingBytes: 3 * (BYTES + 200) });
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) s.offer(`k${i}`, payload(i));
  assert.ok(performance.now() - t0 < 20, 'offer returned before any write finished');
  assert.equal(s.stats().droppedWrites, 7);
  await settled(s);
  assert.equal(s.stats().writtenBlocks, 3);
  assert.deepEqual([...tier.values.keys()], ['k0', 'k1', 'k2']);
});

test('a block written once is not written again, unless a lookup finds the tier lost it', async () => {
  const tier = new MemoryTier();
  const s = store([tier]);
  s.offer('a', payload(1));
  await settled(s);
  assert.ok(s.holds('a'));
  s.offer('a', payload(1));
  await settled(s);
  assert.equal(tier.stats().puts, 1);
  tier.values.clear();
  assert.deepEqual(await s.fetch(['a']), []);
  assert.ok(!s.holds('a'));
  s.offer('a', payload(1));
  await settled(s);
  assert.equal(tier.stats().puts, 2);
});
