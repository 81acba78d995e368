// The flat byte trie against what a trie is: one node per distinct prefix of the tokens' bytes, each
// token at the node of its whole bytes, children unique and in byte order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteTrie } from '../../src/constrained/byte-trie.js';
import { Rng } from '../../src/engine/rng.js';

test('every token is found at its own bytes, every distinct prefix is one node, and nothing else is there', () => {
  const rng = new Rng(7);
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < 3000; i++) {
    // Few byte values and short lengths: many shared prefixes, tokens that are prefixes of others, duplicates.
    const n = Math.floor(rng.next() * 6);
    pieces.push(Uint8Array.from({ length: n }, () => 97 + Math.floor(rng.next() * 4)));
  }
  pieces.push(Uint8Array.of(0), Uint8Array.of(255, 0, 255));
  const trie = ByteTrie.of(pieces);

  const prefixes = new Set<string>(['']);
  for (const p of pieces) for (let d = 1; d <= p.length; d++) prefixes.add(Array.from(p.subarray(0, d)).join(','));
  assert.equal(trie.nodes, prefixes.size);

  pieces.forEach((p, id) => {
    const node = trie.descend(p);
    const here: number[] = [];
    trie.forEachBelow(node, (x) => here.push(x));
    if (p.length === 0) return; // empty pieces are left out (the root holds no token)
    assert.ok(node > 0, `token ${id} has a node`);
    assert.ok(Array.from(trie.idList.subarray(trie.idStart[node], trie.idStart[node + 1])).includes(id), `token ${id} ends at its node`);
  });
  const all: number[] = [];
  trie.forEachBelow(ByteTrie.ROOT, (id) => all.push(id));
  assert.deepEqual(all.sort((a, b) => a - b), pieces.flatMap((p, id) => (p.length > 0 ? [id] : [])));
  for (let n = 0; n < trie.nodes; n++) {
    const bytes = Array.from(trie.edgeByte.subarray(trie.edgeStart[n], trie.edgeStart[n + 1]));
    assert.deepEqual(bytes, [...new Set(bytes)].sort((a, b) => a - b), `node ${n}'s children are unique and in byte order`);
  }
  assert.equal(trie.descend(Uint8Array.of(97, 97, 97, 97, 97, 97, 97)), -1);
});
