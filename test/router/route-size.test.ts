// The size the router gives a prompt, in blocks of the replicas' block size: a part-filled last block
// counts by its share, so a short question after a cached prefix weighs a fraction of a block, and the
// chain covers only the whole blocks a replica could take from its cache (never the one holding the
// prompt's last token).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplicaPool } from '../../src/router/replica-pool.js';
import { createPolicy, type ReplicaView } from '../../src/router/routing-policy.js';

function poolWithBlocks(blockTokens: number): ReplicaPool {
  // Never started: the test sets the chain parameters a hello would have brought.
  const pool = new ReplicaPool(['http://127.0.0.1:9'], { modelFingerprint: 'm' });
  pool.replicas[0]!.params = { fingerprint: 'model-and-format', blockTokens, layoutVersion: '1' };
  return pool;
}

const tokens = (n: number) => Array.from({ length: n }, (_, i) => 100 + i);

test('a prompt weighs its tokens / block size; its chain holds the whole blocks before its last token', () => {
  const pool = poolWithBlocks(128);
  const prefixed = pool.route({ tokens: tokens(1024 + 32), salt: '', shareable: true });
  assert.equal(prefixed.blocks, 8.25);
  assert.equal(prefixed.chain.length, 8);
  const exact = pool.route({ tokens: tokens(1024), salt: '', shareable: true });
  assert.equal(exact.blocks, 8);
  assert.equal(exact.chain.length, 7, 'the block holding the last token is computed again');
  assert.deepEqual(exact.chain, prefixed.chain.slice(0, 7), 'the same tokens give the same keys');
  const unshared = pool.route({ tokens: tokens(300), salt: '', shareable: false });
  assert.deepEqual(unshared, { chain: [], blocks: 300 / 128 });
});

test('queued questions on the replica holding a prefix weigh their share, so they do not send the next one to recompute it', () => {
  const pool = poolWithBlocks(128);
  const request = pool.route({ tokens: tokens(1024 + 32), salt: '', shareable: true });
  const holder: ReplicaView = { url: 'holder', inFlight: 12, activeBlocks: 12 * 0.25, cachedPrefix: (chain) => chain.length };
  const idle: ReplicaView = { url: 'idle', inFlight: 0, activeBlocks: 0, cachedPrefix: () => 0 };
  // holder: 0.25 + 3 = 3.25; idle: 8.25 + 0. Counted in whole blocks (1 each) the holder would lose: 1 + 12 > 9.
  assert.equal(createPolicy('prefix', 1).choose([idle, holder], request).replica.url, 'holder');
});
