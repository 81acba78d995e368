// What the prefix index costs per prompt token: hashing a prompt's blocks into a chain
// (PrefixIndex.extendChain, one SHA-256 per block) and looking the chain up (match), timed over many
// tokens. The index is given a stand-in for the KV manager's blocks, since only ids matter here.
import type { GrowResult } from '../src/kv/manager.js';
import type { CachedBlocks } from '../src/kv/cached-blocks.js';
import { PrefixIndex } from '../src/kv/prefix-index.js';
import { Rng } from '../src/engine/rng.js';
import { median, round } from './stats.js';

class CountingBlocks implements CachedBlocks {
  private next = 0;
  private live = 0;
  readonly blockPages = 0;
  constructor(readonly blockTokens: number) {}
  retain(): number {
    this.live++;
    return this.next++;
  }
  attach(): GrowResult {
    throw new Error('not used by the hashing benchmark');
  }
  release(): number {
    this.live--;
    return 0;
  }
  held(): number {
    return this.live;
  }
}

export interface HashingResult {
  tokens: number;
  blockTokens: number;
  repeats: number;
  /** Medians over the repeats, in ns per prompt token. */
  extendChainNsPerToken: number;
  /** match() of a fully cached chain (every block found) and of an uncached one (the first lookup misses). */
  matchHitNsPerToken: number;
  matchMissNsPerToken: number;
}

export function benchPrefixHashing(tokens: number, blockTokens: number, repeats: number): HashingResult {
  const rng = new Rng(11);
  const ids = Int32Array.from({ length: tokens }, () => 3 + Math.floor(rng.next() * 31997));
  const blocks = tokens / blockTokens;
  const index = new PrefixIndex(new CountingBlocks(blockTokens), 'bench-fingerprint');
  const timeNs = (f: () => void) => {
    const t0 = process.hrtime.bigint();
    f();
    return Number(process.hrtime.bigint() - t0);
  };
  const extend: number[] = [];
  const hit: number[] = [];
  const miss: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const chain: string[] = [];
    extend.push(timeNs(() => index.extendChain(chain, (i) => ids[i]!, blocks, `salt-${r}`)) / tokens);
    miss.push(timeNs(() => index.match(chain)) / tokens);
    for (let b = 0; b < blocks; b++) index.publish(chain[b]!, 0, b);
    hit.push(timeNs(() => {
      if (index.match(chain).length !== blocks) throw new Error('prefix hashing bench: published chain not found');
    }) / tokens);
    index.unpin(index.match(chain)); // publish pinned each entry once
    index.clear();
  }
  return {
    tokens,
    blockTokens,
    repeats,
    extendChainNsPerToken: round(median(extend)),
    matchHitNsPerToken: round(median(hit)),
    matchMissNsPerToken: round(median(miss)),
  };
}
