// The prefix cache's tiers as the engine sees them: blocks offered as they fill are written to every tier
// in the background, and a lookup returns the run of blocks, following the pool's hits, that some tier holds.
//
// Nothing here may stall a step or corrupt a cache: writes queue up to a byte bound (a burst past it is
// dropped and counted, never waited for), every tier call may fail (counted; the blocks are computed
// instead), and a value is loaded only when its header and checksum prove it is the block asked for.
import type { BlockTier, BlockTierStats } from './tier.js';
import { decodeBlock, encodeBlock, type BlockRejection } from './block-codec.js';

export interface TierStoreOptions {
  /** Model-and-format fingerprint: a value must carry it to be loaded. */
  fingerprint: string;
  /** Payload bytes of one block (all layers' K and V rows). */
  blockBytes: number;
  /** Most bytes waiting to be written; offers past it are dropped (default 256 MiB). */
  maxPendingBytes?: number;
  /** Keys remembered as stored, so that a block is not written again (default 65536). */
  maxKnownKeys?: number;
}

export interface TierStoreStats {
  tiers: (BlockTierStats & { name: string })[];
  /** Blocks asked for past the pool's hits, and how many of them came from a tier. */
  queriedBlocks: number;
  hitBlocks: number;
  loadedBytes: number;
  /** Values found but not used, by reason. */
  rejected: Record<BlockRejection, number>;
  /** Tier calls that failed (each tier also counts its own). */
  failures: number;
  /** Blocks written to the tiers, waiting to be, and dropped because the queue was full. */
  writtenBlocks: number;
  pendingBlocks: number;
  pendingBytes: number;
  droppedWrites: number;
}

const DEFAULT_MAX_PENDING_BYTES = 256 * 2 ** 20;
/**
 * Blocks being written at once: a few in flight keep a Redis connection busy while the client handles the
 * last reply (pipelining), where one at a time leaves it idle half the time (bench/README.md, cluster).
 */
export const WRITES_IN_FLIGHT = 4;
const DEFAULT_MAX_KNOWN_KEYS = 65536;

export class KVTierStore {
  /** Blocks waiting to be written: their keys and rows (encoded by the writer, off the step that offered them). */
  private readonly queue: { key: string; payload: Uint8Array }[] = [];
  /** Bytes and blocks queued or being written. */
  private pendingBytes = 0;
  private pendingBlocks = 0;
  /** Writers draining the queue now (at most WRITES_IN_FLIGHT), and a promise that settles when all are done. */
  private writers = 0;
  private draining: Promise<void> | undefined;
  private drained: (() => void) | undefined;
  /** Keys some tier holds, oldest first (a bounded memory of what need not be written again). */
  private readonly known = new Set<string>();
  private closed = false;
  private readonly counts = { queriedBlocks: 0, hitBlocks: 0, loadedBytes: 0, failures: 0, writtenBlocks: 0, droppedWrites: 0 };
  private readonly rejected: Record<BlockRejection, number> = { malformed: 0, foreign: 0, checksum: 0 };

  constructor(
    private readonly tiers: readonly BlockTier[],
    private readonly options: TierStoreOptions,
  ) {
    if (tiers.length === 0) throw new RangeError('a tier store needs at least one tier');
  }

  /** Whether writing `key` would be wasted (a tier is known to hold it already). */
  holds(key: string): boolean {
    return this.known.has(key);
  }

  /**
   * Queues block `key` (its rows, copied by the caller) for every tier. Returns at once; drops the block
   * (counted) when the queue holds too many bytes already.
   */
  offer(key: string, payload: Uint8Array): void {
    if (this.closed || this.known.has(key)) return;
    if (this.pendingBytes + payload.length > (this.options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES)) {
      this.counts.droppedWrites++;
      return;
    }
    this.queue.push({ key, payload });
    this.pendingBytes += payload.length;
    this.pendingBlocks++;
    this.draining ??= new Promise<void>((resolve) => (this.drained = resolve));
    if (this.writers < WRITES_IN_FLIGHT) {
      this.writers++;
      void this.drain();
    }
  }

  /**
   * The payloads of the longest run of `keys`, from the first, that the tiers hold and that check out.
   * Tiers are asked in order, each for what the ones before it lacked. Never rejects: a failing tier
   * ends the run where it is.
   */
  async fetch(keys: readonly string[]): Promise<Uint8Array[]> {
    this.counts.queriedBlocks += keys.length;
    const run: Uint8Array[] = [];
    for (const tier of this.tiers) {
      if (run.length === keys.length) break;
      const wanted = keys.slice(run.length);
      let values: (Uint8Array | undefined)[];
      try {
        values = await tier.get(wanted);
      } catch {
        this.counts.failures++;
        continue;
      }
      for (let i = 0; i < wanted.length; i++) {
        const value = values[i];
        if (value === undefined) break;
        const decoded = decodeBlock(value, wanted[i]!, this.options.fingerprint, this.options.blockBytes);
        if ('rejected' in decoded) {
          this.rejected[decoded.rejected]++;
          return this.hits(run, keys);
        }
        run.push(decoded.payload);
      }
    }
    return this.hits(run, keys);
  }

  stats(): TierStoreStats {
    return {
      tiers: this.tiers.map((t) => ({ name: t.name, ...t.stats() })),
      ...this.counts,
      rejected: { ...this.rejected },
      pendingBlocks: this.pendingBlocks,
      pendingBytes: this.pendingBytes,
    };
  }

  /** Waits for queued writes (at most `timeoutMs`), then closes every tier. */
  async close(timeoutMs = 2000): Promise<void> {
    this.closed = true;
    if (this.draining) await Promise.race([this.draining, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    this.queue.length = 0;
    this.pendingBlocks = this.pendingBytes = 0;
    await Promise.allSettled(this.tiers.map((t) => t.close()));
  }

  private hits(run: Uint8Array[], keys: readonly string[]): Uint8Array[] {
    this.counts.hitBlocks += run.length;
    for (let i = 0; i < run.length; i++) {
      this.counts.loadedBytes += run[i]!.length;
      this.remember(keys[i]!);
    }
    // A block the tiers lost (Redis's LRU, a restart) is written again when it is next computed.
    for (let i = run.length; i < keys.length; i++) this.known.delete(keys[i]!);
    return run;
  }

  /** One writer: takes blocks off the queue until it is empty; the last writer to stop settles `draining`. */
  private async drain(): Promise<void> {
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      const value = encodeBlock(next.key, this.options.fingerprint, next.payload);
      const results = await Promise.allSettled(this.tiers.map((t) => t.put(next!.key, value)));
      this.pendingBytes -= next.payload.length;
      this.pendingBlocks--;
      const failed = results.filter((r) => r.status === 'rejected').length;
      this.counts.failures += failed;
      if (failed < results.length) {
        this.counts.writtenBlocks++;
        this.remember(next.key);
      }
    }
    if (--this.writers === 0) {
      this.draining = undefined;
      this.drained?.();
    }
  }

  private remember(key: string): void {
    this.known.delete(key);
    this.known.add(key);
    if (this.known.size > (this.options.maxKnownKeys ?? DEFAULT_MAX_KNOWN_KEYS)) this.known.delete(this.known.values().next().value!);
  }
}
