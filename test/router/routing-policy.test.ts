// The routing policies on replicas whose cache and load the test sets: the prefix policy's cost
// (overlap weight x blocks to compute + active blocks), its tie-breaks, and the two cache-blind policies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPolicy, type ReplicaView, type RouteRequest } from '../../src/router/routing-policy.js';

function replica(url: string, cached: string[], inFlight = 0, activeBlocks = 0): ReplicaView {
  return { url, inFlight, activeBlocks, cachedPrefix: (chain) => { let n = 0; while (n < chain.length && cached.includes(chain[n]!)) n++; return n; } };
}

const chain = ['h0', 'h1', 'h2', 'h3', 'h4', 'h5'];
const request: RouteRequest = { chain, blocks: 7 };

test('prefix: the replica holding the longest prefix wins while its load is lighter than the work it saves', () => {
  const policy = createPolicy('prefix', 1);
  const warm = replica('warm', ['h0', 'h1', 'h2', 'h3'], 2, 3);
  const cold = replica('cold', [], 0, 0);
  // warm: 1 x (7 - 4) + 3 = 6; cold: 1 x 7 + 0 = 7.
  const d = policy.choose([cold, warm], request);
  assert.equal(d.replica.url, 'warm');
  assert.equal(d.overlapBlocks, 4);
  assert.equal(d.basis, 'cached_prefix');
  // A gap in the chain ends the match: only the leading blocks count.
  assert.equal(replica('gap', ['h0', 'h2', 'h3']).cachedPrefix(chain), 1);
});

test('prefix: load outweighs a short overlap, and the overlap weight shifts the balance', () => {
  const warm = replica('warm', ['h0', 'h1'], 3, 5);
  const cold = replica('cold', [], 0, 0);
  // Weight 1: warm 5 + 5 = 10, cold 7 -> cold.
  assert.equal(createPolicy('prefix', 1).choose([warm, cold], request).replica.url, 'cold');
  // Weight 4: warm 4 x 5 + 5 = 25, cold 28 -> warm.
  assert.equal(createPolicy('prefix', 4).choose([warm, cold], request).replica.url, 'warm');
});

test('prefix: equal costs go to the replica holding more of the prompt, not to the idler one', () => {
  const policy = createPolicy('prefix', 1);
  // owner: 1 x (7 - 6) + 6 = 7 with another prompt's blocks queued; idle: 1 x 7 + 0 = 7 (would recompute all six).
  const owner = replica('owner', chain, 3, 6);
  const idle = replica('idle', [], 0, 0);
  for (const order of [[owner, idle], [idle, owner]]) {
    const d = policy.choose(order, request);
    assert.equal(d.replica.url, 'owner');
    assert.equal(d.basis, 'cached_prefix');
  }
  // One block more queued at the owner tips it to the idle replica.
  assert.equal(policy.choose([replica('owner', chain, 3, 7), idle], request).replica.url, 'idle');
});

test('prefix: equal costs and overlaps go to fewer requests in flight, then in turn', () => {
  const policy = createPolicy('prefix');
  const busy = replica('busy', [], 4, 0);
  const idle = replica('idle', [], 1, 0);
  assert.equal(policy.choose([busy, idle], request).replica.url, 'idle');
  assert.equal(policy.choose([busy, idle], request).basis, 'load');
  const a = replica('a', []);
  const b = replica('b', []);
  const picks = Array.from({ length: 4 }, () => policy.choose([a, b], request));
  assert.deepEqual(new Set(picks.map((d) => d.replica.url)), new Set(['a', 'b']), 'ties do not all land on the first');
  assert.ok(picks.every((d) => d.basis === 'turn'));
});

test('round-robin alternates whatever the caches hold; least-loaded takes the fewest in flight', () => {
  const rr = createPolicy('round-robin');
  const a = replica('a', chain);
  const b = replica('b', []);
  assert.deepEqual(Array.from({ length: 4 }, () => rr.choose([a, b], request).replica.url), ['a', 'b', 'a', 'b']);
  const ll = createPolicy('least-loaded');
  assert.equal(ll.choose([replica('x', chain, 3), replica('y', [], 1), replica('z', [], 2)], request).replica.url, 'y');
  // Equal requests in flight: fewer active blocks.
  assert.equal(ll.choose([replica('x', [], 1, 9), replica('y', [], 1, 2)], request).replica.url, 'y');
});

test('the default overlap weight keeps a prompt on the replica holding it until four times its blocks are queued there', () => {
  const policy = createPolicy('prefix');
  const idle = replica('idle', [], 0, 0);
  // holder: 4 x 1 + 24 = 28 ties idle's 4 x 7 = 28 (the overlap breaks the tie); one more queued block tips it.
  assert.equal(policy.choose([idle, replica('holder', chain, 9, 24)], request).replica.url, 'holder');
  assert.equal(policy.choose([idle, replica('holder', chain, 9, 25)], request).replica.url, 'idle');
});

test('a negative or infinite overlap weight is refused', () => {
  assert.throws(() => createPolicy('prefix', -1), /overlapWeight must be a finite number >= 0, got -1/);
  assert.throws(() => createPolicy('prefix', Infinity), /got Infinity/);
});

test('prefix: costs that differ only by floating-point rounding tie, and the tie-breaks decide', () => {
  const policy = createPolicy('prefix', 1);
  // 0.1 + 0.2 is 0.30000000000000004: a hair above 0.3, which must not outweigh fewer requests in flight.
  const a = replica('a', [], 1, 0.1 + 0.2);
  const b = replica('b', [], 5, 0.3);
  assert.equal(policy.choose([b, a], { chain: [], blocks: 1 }).replica.url, 'a');
});
