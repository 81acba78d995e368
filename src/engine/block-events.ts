// The prefix cache's block events as they leave the worker: the index reports every block it stores or
// gives back, and this collects them into one message per short interval (a step that publishes many
// blocks, or an eviction of hundreds, is one message, never one per block). Only the net change goes
// out: a block stored and given back within one batch is reported as removed, and the reverse as stored,
// so a receiver that applies `removed` and `stored` in either order ends with the index's own set.
import type { PrefixIndexListener } from '../kv/prefix-index.js';

/** Blocks that entered and left the prefix cache since the last batch (disjoint lists). */
export interface BlockEvents {
  stored: string[];
  removed: string[];
}

/** Everything a receiver needs to mirror a replica's prefix cache: its keys now and how they are made. */
export interface BlockSnapshot {
  /** The chain's root parameters (see kv/block-hash.ts): equal values mean equal keys for equal tokens. */
  fingerprint: string;
  blockTokens: number;
  layoutVersion: string;
  /** Keys of every cached block, least recently used first. */
  keys: string[];
}

/** The longest a block event waits before it is sent; steps that run longer delay it until they end. */
export const BLOCK_EVENT_DELAY_MS = 5;

export class BlockEventBatch implements PrefixIndexListener {
  /** hash -> whether it is in the cache after the changes so far (Map order: first change first). */
  private readonly changes = new Map<string, boolean>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly send: (events: BlockEvents) => void,
    private readonly delayMs = BLOCK_EVENT_DELAY_MS,
  ) {}

  stored(hash: string): void {
    this.change(hash, true);
  }

  removed(hash: string): void {
    this.change(hash, false);
  }

  /** Sends what is pending now (before a snapshot, so that the snapshot follows every event it includes). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.changes.size === 0) return;
    const events: BlockEvents = { stored: [], removed: [] };
    for (const [hash, present] of this.changes) (present ? events.stored : events.removed).push(hash);
    this.changes.clear();
    this.send(events);
  }

  /** Drops what is pending and stops the timer (the engine is closing). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.changes.clear();
  }

  private change(hash: string, present: boolean): void {
    this.changes.delete(hash);
    this.changes.set(hash, present);
    this.timer ??= setTimeout(() => this.flush(), this.delayMs).unref();
  }
}
