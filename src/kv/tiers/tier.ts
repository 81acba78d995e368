// A tier below the pool for the prefix cache's blocks: a store of opaque values under the blocks' chain
// keys (block-hash.ts), shared by every process that computes the same keys. The tiers know nothing of KV
// layout; tiered-store.ts encodes, checks and schedules what goes in and out of them.
//
// Every method may reject (a tier is a network or a disk): callers count that as a failure and compute the
// KV instead. None may resolve with wrong data: a value is the bytes that put() stored under that key, or
// undefined.

export interface BlockTier {
  /** Short name for logs and metrics: 'disk', 'redis'. */
  readonly name: string;
  /** How many of `keys`, counted from the first, the tier holds now: the run a lookup may use. One round trip. */
  containsRun(keys: readonly string[]): Promise<number>;
  /** The values stored under `keys`, undefined where absent. */
  get(keys: readonly string[]): Promise<(Uint8Array | undefined)[]>;
  /** Stores `value` under `key` (an existing value with that key may be kept instead: keys name their contents). */
  put(key: string, value: Uint8Array): Promise<void>;
  /** Counters for metrics. */
  stats(): BlockTierStats;
  close(): Promise<void>;
}

export interface BlockTierStats {
  /** Values stored and bytes written by put(). */
  puts: number;
  putBytes: number;
  /** Values returned by get() and their bytes. */
  gets: number;
  getBytes: number;
  /** Calls that failed (unreachable, timed out, I/O error). */
  failures: number;
  /** Writes skipped on purpose (a full disk, the size cap reached with nothing to drop). */
  skippedWrites: number;
  /** Whether the tier is reachable now, as far as it knows. */
  up: boolean;
}
