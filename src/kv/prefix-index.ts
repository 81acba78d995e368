// The prefix cache's index: which blocks of tokens have their KV cached, keyed by a chain of hashes.
// A block's hash covers its parent's hash and its own tokens, and the chain's root covers the model and
// cache-format fingerprint and an optional tenant salt, so equal keys mean equal KV in any process
// (replicas and shared tiers can agree on them). Lookup walks the chain and stops at the first miss.
//
// An entry holds one reference on its block (CachedBlocks.retain) for as long as it is in the index.
// Sequences using an entry pin it; entries nobody pins are kept in least-recently-used order and given
// back only when the pool needs their pages (or the index is over its size limit). The index also knows
// which blocks are being computed right now, so that requests arriving together compute a shared prefix
// once: the others wait for its blocks instead of computing them again.
import { BlockHasher } from './block-hash.js';
import type { CachedBlocks } from './cached-blocks.js';

export interface CacheEntry {
  readonly hash: string;
  /** The manager's block id. */
  readonly block: number;
  /** Running sequences using the block. */
  users: number;
}

export interface PrefixCacheStats {
  /** Blocks in the index, and tokens per block. */
  entries: number;
  blockTokens: number;
  /** Entries no running sequence uses: given back first when the pool needs pages. */
  unusedEntries: number;
  /** Pool pages held only by the cache (reclaimable at once). */
  unusedPages: number;
  /** Prompt tokens looked up at admission, and how many of them were cached. */
  queryTokens: number;
  hitTokens: number;
  hitRate: number;
  /** Entries given back to make room. */
  evictions: number;
}

/** Told of every block the index gains or gives back (a replica's stream for the router, the tiers). */
export interface PrefixIndexListener {
  stored(hash: string): void;
  removed(hash: string): void;
}

export class PrefixIndex {
  /** Map order is recency: the first entries are the least recently used. */
  private readonly entries = new Map<string, CacheEntry>();
  /** Blocks being computed now: hash -> the id of the sequence computing it. */
  private readonly inflight = new Map<string, number>();
  private unused = 0;
  private queryTokens = 0;
  private hitTokens = 0;
  private evictions = 0;
  private readonly hasher: BlockHasher;
  private listener: PrefixIndexListener | undefined;

  constructor(
    private readonly blocks: CachedBlocks,
    /** Model and cache-format fingerprint: part of every key. */
    readonly fingerprint: string,
    /** Most entries held (static copies rows outside any pool, so only this bounds it). */
    private readonly maxEntries = Infinity,
  ) {
    this.hasher = new BlockHasher(fingerprint, blocks.blockTokens);
  }

  /** Starts telling `listener` of blocks stored and removed from now on (one listener; undefined stops). */
  listen(listener: PrefixIndexListener | undefined): void {
    this.listener = listener;
  }

  /** Keys of every block in the index now, least recently used first. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  get blockTokens(): number {
    return this.blocks.blockTokens;
  }

  /** Extends `chain` (hashes of blocks 0..chain.length-1 of a token sequence) to its first `count` blocks. */
  extendChain(chain: string[], tokenAt: (i: number) => number, count: number, salt = ''): void {
    this.hasher.extend(chain, tokenAt, count, salt);
  }

  /** The longest run of cached blocks at the start of `chain`, at most `limit` blocks. */
  match(chain: readonly string[], limit = chain.length): CacheEntry[] {
    const hits: CacheEntry[] = [];
    for (let b = 0; b < Math.min(limit, chain.length); b++) {
      const entry = this.entries.get(chain[b]!);
      if (!entry) break;
      hits.push(entry);
    }
    return hits;
  }

  /** Records a lookup at admission (for the hit-rate counters). */
  countQuery(tokens: number, hits: number): void {
    this.queryTokens += tokens;
    this.hitTokens += hits;
  }

  /** The sequence computing block `hash` now, if it is not `self`. */
  computingElsewhere(hash: string, self: number): boolean {
    const owner = this.inflight.get(hash);
    return owner !== undefined && owner !== self;
  }

  /** Marks blocks as being computed by `owner` (those nobody else computes or has cached). */
  claim(hashes: readonly string[], owner: number): void {
    for (const h of hashes) if (!this.entries.has(h) && !this.inflight.has(h)) this.inflight.set(h, owner);
  }

  /** Forgets `owner`'s claims on `hashes` (computed, or the sequence is gone). */
  unclaim(hashes: readonly string[], owner: number): void {
    for (const h of hashes) if (this.inflight.get(h) === owner) this.inflight.delete(h);
  }

  /**
   * Caches block `index` of `slot` under `hash`, pinned once for the sequence that computed it. Returns
   * undefined when the hash is cached already (another sequence got there first; this one keeps its copy).
   */
  publish(hash: string, slot: number, index: number): CacheEntry | undefined {
    if (this.entries.has(hash)) return undefined;
    const entry: CacheEntry = { hash, block: this.blocks.retain(slot, index), users: 1 };
    this.entries.set(hash, entry);
    this.listener?.stored(hash);
    this.enforceLimit();
    return entry;
  }

  pin(entries: readonly CacheEntry[]): void {
    for (const e of entries) {
      if (e.users++ === 0) this.unused--;
      this.touch(e);
    }
  }

  /** Unpins a sequence's blocks, deepest first, so that a chain's tail is given back before its head. */
  unpin(entries: readonly CacheEntry[]): void {
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i]!;
      if (e.users <= 0) throw new Error(`prefix cache: block ${e.hash} unpinned more often than pinned`);
      if (--e.users === 0) this.unused++;
      if (this.entries.get(e.hash) === e) this.touch(e);
    }
    this.enforceLimit();
  }

  /** Pool pages that evict() could free now. */
  unusedPages(): number {
    return this.unused * this.blocks.blockPages;
  }

  /** Gives back least-recently-used unpinned entries until `pages` pool pages were freed; returns that count. */
  evict(pages: number): number {
    let freed = 0;
    for (const e of this.entries.values()) {
      if (freed >= pages) break;
      if (e.users > 0) continue;
      freed += this.drop(e);
    }
    return freed;
  }

  /** Gives back every unpinned entry. */
  clear(): number {
    return this.evict(Infinity);
  }

  stats(): PrefixCacheStats {
    return {
      entries: this.entries.size,
      blockTokens: this.blockTokens,
      unusedEntries: this.unused,
      unusedPages: this.unusedPages(),
      queryTokens: this.queryTokens,
      hitTokens: this.hitTokens,
      hitRate: this.queryTokens === 0 ? 0 : this.hitTokens / this.queryTokens,
      evictions: this.evictions,
    };
  }

  private touch(e: CacheEntry): void {
    this.entries.delete(e.hash);
    this.entries.set(e.hash, e);
  }

  private drop(e: CacheEntry): number {
    this.entries.delete(e.hash);
    this.unused--;
    this.evictions++;
    this.listener?.removed(e.hash);
    return this.blocks.release(e.block);
  }

  private enforceLimit(): void {
    if (this.entries.size <= this.maxEntries) return;
    for (const e of this.entries.values()) {
      if (this.entries.size <= this.maxEntries) break;
      if (e.users === 0) this.drop(e);
    }
  }
}
