// The worker's batching of prefix-cache block events: one message for everything that happened within
// the delay, and only the net change per block, so that a receiver ends with the index's own key set.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlockEventBatch, type BlockEvents } from '../../src/engine/block-events.js';

test('many changes within the delay leave as one message', async () => {
  const sent: BlockEvents[] = [];
  const batch = new BlockEventBatch((e) => sent.push(e), 5);
  for (let i = 0; i < 300; i++) batch.stored(`s${i}`);
  for (let i = 0; i < 100; i++) batch.removed(`r${i}`);
  assert.equal(sent.length, 0, 'nothing leaves before the delay');
  await sleep(30);
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.stored.length, 300);
  assert.deepEqual(sent[0]!.removed, Array.from({ length: 100 }, (_, i) => `r${i}`));
  await sleep(20);
  assert.equal(sent.length, 1, 'no empty messages follow');
});

test('only the net change of a block is sent, and a receiver applying it matches the index', async () => {
  const sent: BlockEvents[] = [];
  const batch = new BlockEventBatch((e) => sent.push(e), 1000);
  // The receiver's copy before this batch: a and b cached.
  const mirror = new Set(['a', 'b']);
  const index = new Set(mirror);
  const store = (h: string) => (index.add(h), batch.stored(h));
  const remove = (h: string) => (index.delete(h), batch.removed(h));
  store('c'); remove('c'); // came and went: removed (a no-op for the receiver)
  remove('a'); store('a'); // went and came back: stored
  remove('b');
  store('d');
  batch.flush();
  assert.equal(sent.length, 1);
  const [e] = sent as [BlockEvents];
  assert.deepEqual(new Set(e.stored), new Set(['a', 'd']));
  assert.deepEqual(new Set(e.removed), new Set(['c', 'b']));
  for (const order of [['removed', 'stored'], ['stored', 'removed']] as const) {
    const copy = new Set(mirror);
    for (const kind of order) for (const h of e[kind]) kind === 'stored' ? copy.add(h) : copy.delete(h);
    assert.deepEqual(copy, index, `applied ${order.join(' then ')}`);
  }
});

test('flush sends what is pending at once; close drops it', () => {
  const sent: BlockEvents[] = [];
  const batch = new BlockEventBatch((e) => sent.push(e), 1000);
  batch.stored('x');
  batch.flush();
  assert.deepEqual(sent, [{ stored: ['x'], removed: [] }]);
  batch.flush();
  assert.equal(sent.length, 1);
  batch.removed('x');
  batch.close();
  batch.flush();
  assert.equal(sent.length, 1);
});
