// The shared tier: values in Redis (one server or a Redis Cluster), seen by every replica that computes the
// same block keys. Redis evicts by itself (run it with `maxmemory-policy allkeys-lru`), so a key may vanish
// at any time; a lookup then finds it absent, never another key's value.
//
// A cache must never make a request slower than computing its KV, so the client fails fast: while Redis is
// down, calls reject at once (no offline queue) instead of waiting for a reconnect; a slow Redis is cut off
// after the command timeout; a connection on which nothing arrives is dropped; reconnects go on forever with
// exponential backoff. The connection itself is one file per form (redis-connection.ts). One line is logged when an outage starts and one when it ends, not one per call.
import type { ConnectionOptions } from 'node:tls';
import type { BlockTier, BlockTierStats } from './tier.js';
import { checkTierKey } from './tier-key.js';
import { describeStoreAddress, type StoreAddress } from './store-address.js';
import type { RedisConnection } from './redis-connection.js';
import { RedisClusterConnection } from './redis-cluster-connection.js';
import { RedisServerConnection } from './redis-server-connection.js';
import { retainFreedHeapForTierReads } from './heap-retention.js';

export interface RedisTierOptions {
  /** Put before every key, so that one Redis can serve other data too (default 'vserve:kv:'). */
  keyPrefix?: string;
  /**
   * How long one connection attempt may take (default 1000 ms). On a LAN a connect takes well under a
   * millisecond, so a second already means the host is gone; calls fail at once meanwhile in any case, so
   * this only bounds how long each reconnect attempt hangs on a silent host.
   */
  connectTimeoutMs?: number;
  /**
   * How long a call may wait for its reply (default 500 ms). The largest call moves a few blocks of a few
   * MB, far under this on a working network; past it the requests waiting on the call are better off
   * computing their KV than waiting longer for a Redis that is stalled or swamped.
   */
  commandTimeoutMs?: number;
  /** Longest wait between reconnect attempts (default 5000 ms): how soon a Redis that came back is used. */
  maxReconnectDelayMs?: number;
  /**
   * A connection that gets no byte for this long while a call or the tier's heartbeat PING waits for its
   * reply is dropped and reconnected (default 5000 ms, or four command timeouts if that is longer): it
   * catches a host that vanished without closing the connection, which TCP alone would notice only after
   * many minutes. It must exceed the command timeout, so that a merely slow server is not cut off.
   */
  silentConnectionMs?: number;
  /** Extra TLS settings for rediss:// (a private CA, a client certificate). */
  tls?: ConnectionOptions;
  /** One line when Redis becomes unreachable and one when it is back. */
  log?: (line: string) => void;
}

const KEY_PREFIX = /^[A-Za-z0-9:._-]{0,64}$/;
/** First reconnect delay; each later one doubles, up to maxReconnectDelayMs. */
const FIRST_RECONNECT_DELAY_MS = 50;

function checkPositive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`${name} must be a positive number of milliseconds, got ${value}`);
  return value;
}

/**
 * Values a get() keeps in flight. One at a time leaves the connection idle between replies; a whole
 * prompt's blocks at once queue megabytes of replies in the socket, which reads slower than a short window.
 */
const GETS_IN_FLIGHT = 2;

/** How many times a call's timeout restarts because it fired late, the thread having been busy. */
const MAX_BUSY_EXTENSIONS = 3;

export class RedisTier implements BlockTier {
  readonly name = 'redis';
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
  private readonly connection: RedisConnection;
  private readonly where: string;
  private readonly log: (line: string) => void;
  private readonly maxReconnectDelayMs: number;
  private up = false;
  /** Whether the current outage was logged (one line per outage). */
  private outage = false;
  private lastError: string | undefined;
  private closing = false;
  private readonly upWaiters = new Set<() => void>();
  private readonly counters = { puts: 0, putBytes: 0, gets: 0, getBytes: 0, failures: 0, skippedWrites: 0 };

  constructor(readonly address: StoreAddress, options: RedisTierOptions = {}) {
    this.keyPrefix = options.keyPrefix ?? 'vserve:kv:';
    if (!KEY_PREFIX.test(this.keyPrefix)) throw new RangeError(`the Redis key prefix may hold up to 64 of A-Z a-z 0-9 : . _ -, got ${JSON.stringify(this.keyPrefix)}`);
    const connectTimeoutMs = checkPositive('connectTimeoutMs', options.connectTimeoutMs ?? 1000);
    this.commandTimeoutMs = checkPositive('commandTimeoutMs', options.commandTimeoutMs ?? 500);
    this.maxReconnectDelayMs = checkPositive('maxReconnectDelayMs', options.maxReconnectDelayMs ?? 5000);
    const silentConnectionMs = checkPositive('silentConnectionMs', options.silentConnectionMs ?? Math.max(5000, 4 * this.commandTimeoutMs));
    if (silentConnectionMs <= this.commandTimeoutMs) throw new RangeError(`silentConnectionMs (${silentConnectionMs}) must exceed commandTimeoutMs (${this.commandTimeoutMs})`);
    this.where = describeStoreAddress(address);
    retainFreedHeapForTierReads();
    this.log = options.log ?? (() => {});
    const settings = {
      username: address.username,
      password: address.password,
      tls: address.tls ? { ...options.tls } : undefined,
      connectTimeoutMs,
      commandTimeoutMs: this.commandTimeoutMs,
      silentConnectionMs,
      retryDelay: (attempt: number) => Math.min(this.maxReconnectDelayMs, FIRST_RECONNECT_DELAY_MS * 2 ** Math.min(attempt - 1, 30)),
    };
    const watcher = {
      up: () => this.becameUp(),
      down: () => this.becameDown(),
      error: (message: string) => {
        this.lastError = message;
        // A connect that fails before the first 'ready' starts an outage too.
        if (!this.up) this.becameDown();
      },
    };
    this.connection = address.kind === 'redis'
      ? new RedisServerConnection(address, settings, watcher)
      : new RedisClusterConnection(address.nodes, settings, watcher);
  }

  async containsRun(keys: readonly string[]): Promise<number> {
    const full = keys.map((k) => this.fullKey(k));
    if (full.length === 0) return 0;
    return this.call(async () => {
      const found = await this.existing(full);
      const gap = found.indexOf(false);
      return gap < 0 ? found.length : gap;
    });
  }

  /** One pipelined EXISTS per key finds what is there (one round trip), then GETs read it, a few in flight. */
  async get(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    const full = keys.map((k) => this.fullKey(k));
    if (full.length === 0) return [];
    const values = await this.call(async (abandoned) => {
      const found = await this.existing(full);
      const wanted = full.flatMap((_, i) => (found[i] ? [i] : []));
      const got: (Buffer | null)[] = new Array(full.length).fill(null);
      let next = 0;
      const fetchNext = async () => {
        // A call past its deadline stops asking: its answer is no longer awaited.
        while (next < wanted.length && !abandoned()) {
          const i = wanted[next++]!;
          got[i] = await this.connection.get(full[i]!);
        }
      };
      await Promise.all(Array.from({ length: Math.min(GETS_IN_FLIGHT, wanted.length) }, fetchNext));
      return got;
    });
    // A key evicted between EXISTS and GET reads as absent, like one never stored.
    return values.map((v) => {
      if (v === null) return undefined;
      this.counters.gets++;
      this.counters.getBytes += v.byteLength;
      return v;
    });
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    const full = this.fullKey(key);
    // The clients send Buffers as bytes: wrap other views of the bytes, without a copy.
    const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    await this.call(() => this.connection.set(full, bytes));
    this.counters.puts++;
    this.counters.putBytes += bytes.byteLength;
  }

  stats(): BlockTierStats {
    return { ...this.counters, up: this.up };
  }

  /** Resolves true once Redis is reachable, or false after `timeoutMs`. */
  whenUp(timeoutMs: number): Promise<boolean> {
    if (this.up) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (result: boolean) => {
        clearTimeout(timer);
        this.upWaiters.delete(onUp);
        resolve(result);
      };
      const onUp = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.upWaiters.add(onUp);
    });
  }

  /** Ends the connection: what is in flight gets up to one command timeout to finish. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.connection.close(this.commandTimeoutMs);
  }

  private fullKey(key: string): string {
    checkTierKey(key);
    return this.keyPrefix + key;
  }

  /** Whether each key is stored: EXISTS for each, sent together (one round trip; per node on a cluster). */
  private async existing(full: readonly string[]): Promise<boolean[]> {
    const replies = await Promise.all(full.map((k) => this.connection.exists(k)));
    return replies.map((reply) => {
      if (reply !== 1 && reply !== 0) throw new Error(`redis tier: EXISTS answered ${String(reply)}`);
      return reply === 1;
    });
  }

  /**
   * Runs one call of the tier under the command timeout as a whole: a call is several commands, a cluster
   * may redirect one to another node, and the caller is owed an answer within the timeout. `run` is told
   * when the deadline has passed, so that it sends nothing more.
   */
  private async call<T>(run: (abandoned: () => boolean) => Promise<T>): Promise<T> {
    if (this.closing) throw this.failed(new Error('the redis tier is closed'));
    if (!this.up) throw this.failed(new Error(`redis tier: ${this.where} is unreachable`));
    let timer: NodeJS.Timeout | undefined;
    let late = false;
    const deadline = new Promise<never>((_, reject) => {
      let extensions = 0;
      const arm = () => {
        const due = performance.now() + this.commandTimeoutMs;
        timer = setTimeout(() => {
          // Fired well past its time: the thread was busy (an engine step), not waiting on Redis, and the
          // answer may be in the socket unread. Give the call a fresh timeout, a few times at most.
          if (performance.now() - due > this.commandTimeoutMs / 2 && extensions++ < MAX_BUSY_EXTENSIONS) return arm();
          late = true;
          reject(new Error(`redis tier: no answer from ${this.where} within ${this.commandTimeoutMs} ms`));
        }, this.commandTimeoutMs);
      };
      arm();
    });
    try {
      const work = run(() => late);
      // The call may still settle after the deadline; its outcome is then of no interest.
      work.catch(() => {});
      return await Promise.race([work, deadline]);
    } catch (e) {
      throw this.failed(e);
    } finally {
      clearTimeout(timer);
    }
  }

  private failed(error: unknown): unknown {
    this.counters.failures++;
    return error;
  }

  private becameUp(): void {
    if (this.closing) return;
    this.up = true;
    if (this.outage) this.log(`redis tier: reachable again at ${this.where}`);
    this.outage = false;
    this.lastError = undefined;
    for (const wake of [...this.upWaiters]) wake();
  }

  private becameDown(): void {
    this.up = false;
    if (this.closing || this.outage) return;
    this.outage = true;
    const why = this.lastError ? ` (${this.lastError})` : '';
    this.log(`redis tier: unreachable at ${this.where}${why}; requests compute their KV instead while it retries with backoff (up to every ${this.maxReconnectDelayMs / 1000} s)`);
  }
}
