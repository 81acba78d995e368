// The prefix index on its own, over a counting stand-in for a manager's blocks: keys are deterministic
// and depend on every token, the parent chain, the fingerprint and the salt; lookup stops at the first
// miss; pins keep entries; eviction gives back the least recently used unpinned entries, a chain's tail
// before its head; claims tell who is computing a block.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CachedBlocks } from '../../src/kv/cached-blocks.js';
import { PrefixIndex } from '../../src/kv/prefix-index.js';

const BLOCK = 4;

/** Blocks that only count references: block id = slot * 100 + index. */
function countingBlocks(): CachedBlocks & { refs: Map<number, number> } {
  const refs = new Map<number, number>();
  return {
    refs,
    blockTokens: BLOCK,
    blockPages: 2,
    retain: (slot, index) => {
      const id = slot * 100 + index;
      refs.set(id, (refs.get(id) ?? 0) + 1);
      return id;
    },
    attach: () => ({ ok: true, pagesNeeded: 0, pagesAvailable: 0, pagesMapped: 0 }),
    release: (id) => {
      const n = refs.get(id)! - 1;
      if (n === 0) refs.delete(id);
      else refs.set(id, n);
      return n === 0 ? 2 : 0;
    },
    held: () => [...refs.values()].reduce((a, b) => a + b, 0),
  };
}

function chainOf(index: PrefixIndex, tokens: number[], salt = ''): string[] {
  const chain: string[] = [];
  index.extendChain(chain, (i) => tokens[i]!, Math.floor(tokens.length / BLOCK), salt);
  return chain;
}

const TOKENS = Array.from({ length: 16 }, (_, i) => 10 + i);

test('keys are deterministic and cover every token, the parent chain, the fingerprint and the salt', () => {
  const a = new PrefixIndex(countingBlocks(), 'model-a');
  const again = new PrefixIndex(countingBlocks(), 'model-a');
  const chain = chainOf(a, TOKENS);
  assert.equal(chain.length, 4);
  assert.deepEqual(chainOf(again, TOKENS), chain, 'another index (another process) computes the same keys');
  const extended: string[] = chain.slice(0, 2);
  a.extendChain(extended, (i) => TOKENS[i]!, 4);
  assert.deepEqual(extended, chain, 'extending a chain continues it');
  const changed = [...TOKENS];
  changed[5] = 999;
  const other = chainOf(a, changed);
  assert.equal(other[0], chain[0]);
  assert.notEqual(other[1], chain[1], 'the block with the changed token');
  assert.notEqual(other[2], chain[2], 'and every block after it, through the parent hash');
  assert.notEqual(chainOf(new PrefixIndex(countingBlocks(), 'model-b'), TOKENS)[0], chain[0], 'another model');
  assert.notEqual(chainOf(a, TOKENS, 'tenant')[0], chain[0], 'another salt');
});

test('match stops at the first miss; publish keeps one entry per key; pins protect entries from eviction', () => {
  const blocks = countingBlocks();
  const index = new PrefixIndex(blocks, 'm');
  const chain = chainOf(index, TOKENS);
  const e0 = index.publish(chain[0]!, 1, 0)!;
  index.publish(chain[2]!, 1, 2);
  assert.equal(index.publish(chain[0]!, 2, 0), undefined, 'a key cached already is not cached twice');
  assert.deepEqual(index.match(chain).map((e) => e.block), [100], 'block 1 is missing, so block 2 is not reached');
  assert.equal(index.unusedPages(), 0, 'published entries are pinned by their sequence');
  assert.equal(index.evict(100), 0);
  index.unpin([e0]);
  assert.equal(index.unusedPages(), 2);
  assert.equal(index.evict(1), 2, 'one entry gives back its pages');
  assert.equal(blocks.refs.has(100), false);
  assert.equal(index.match(chain).length, 0);
  assert.equal(index.stats().evictions, 1);
});

test('eviction takes the least recently used entries, a chain tail before its head', () => {
  const blocks = countingBlocks();
  const index = new PrefixIndex(blocks, 'm');
  const chain = chainOf(index, TOKENS);
  const entries = chain.map((h, b) => index.publish(h, 1, b)!);
  index.unpin(entries);
  const other = chainOf(index, TOKENS.map((t) => t + 100));
  const late = index.publish(other[0]!, 2, 0)!;
  index.unpin([late]);
  assert.equal(index.evict(2), 2);
  assert.deepEqual(index.match(chain).length, 3, 'the deepest block of the older chain went first');
  assert.equal(index.evict(6), 6);
  assert.deepEqual(index.match(chain).length, 0);
  assert.equal(index.match(other).length, 1, 'the most recently used entry is still there');
  index.pin(index.match(other));
  assert.equal(index.clear(), 0, 'a pinned entry stays');
});

test('claims: a block being computed by one sequence is reported to the others until it is published or dropped', () => {
  const index = new PrefixIndex(countingBlocks(), 'm');
  const chain = chainOf(index, TOKENS);
  index.claim(chain, 7);
  assert.equal(index.computingElsewhere(chain[1]!, 8), true);
  assert.equal(index.computingElsewhere(chain[1]!, 7), false, 'not to the sequence computing it');
  index.unclaim(chain.slice(0, 2), 7);
  assert.equal(index.computingElsewhere(chain[1]!, 8), false);
  assert.equal(index.computingElsewhere(chain[2]!, 8), true);
  index.unclaim(chain, 8);
  assert.equal(index.computingElsewhere(chain[2]!, 8), true, 'only the owner drops its claims');
});

test('an index with a size limit gives back unpinned entries beyond it', () => {
  const blocks = countingBlocks();
  const index = new PrefixIndex(blocks, 'm', 2);
  const chain = chainOf(index, TOKENS);
  for (let b = 0; b < 4; b++) index.unpin([index.publish(chain[b]!, 1, b)!]);
  assert.equal(index.stats().entries, 2);
  assert.equal(blocks.held(), 2);
});
