// The shared tier: values in Redis (one server or a Redis Cluster), seen by every replica that computes the
// same block keys. Redis evicts by itself (run it with `maxmemory-policy allkeys-lru`), so a key may vanish
// at any time; a lookup then finds it absent, never another key's value.
//
// A cache must never make a request slower than computing its KV, so the client fails fast: while Redis is
// down, calls reject at once (no offline queue) instead of waiting for a reconnect; a slow Redis is cut off
// after the command timeout; a connection on which nothing arrives is dropped; reconnects go on forever with
// exponential backoff. One line is logged when an outage starts and one when it ends, not one per call.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import type { BlockTier, BlockTierStats } from './tier.js';
import { checkTierKey } from './tier-key.js';
import { describeStoreAddress, type StoreAddress } from './store-address.js';
import { GuardedConnector } from './guarded-connector.js';

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
   * A connection that gets no byte for this long while calls are waiting is dropped and reconnected
   * (default 5000 ms, or four command timeouts if that is longer): it catches a host that vanished without
   * closing the connection, which TCP alone would notice only after many minutes. It must exceed the
   * command timeout, so that a merely slow server is not cut off.
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

export class RedisTier implements BlockTier {
  readonly name = 'redis';
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
  private readonly client: Redis | Cluster;
  private readonly cluster: boolean;
  private readonly where: string;
  private readonly log: (line: string) => void;
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
    const connectTimeout = checkPositive('connectTimeoutMs', options.connectTimeoutMs ?? 1000);
    this.commandTimeoutMs = checkPositive('commandTimeoutMs', options.commandTimeoutMs ?? 500);
    const maxDelay = checkPositive('maxReconnectDelayMs', options.maxReconnectDelayMs ?? 5000);
    const silent = checkPositive('silentConnectionMs', options.silentConnectionMs ?? Math.max(5000, 4 * this.commandTimeoutMs));
    if (silent <= this.commandTimeoutMs) throw new RangeError(`silentConnectionMs (${silent}) must exceed commandTimeoutMs (${this.commandTimeoutMs})`);
    this.where = describeStoreAddress(address);
    this.log = options.log ?? (() => {});
    const retryDelay = (attempt: number) => Math.min(maxDelay, FIRST_RECONNECT_DELAY_MS * 2 ** Math.min(attempt - 1, 30));
    const connection: RedisOptions = {
      connectTimeout,
      commandTimeout: this.commandTimeoutMs,
      socketTimeout: silent,
      // Calls on a connection that drops are rejected at once, not kept to resend after a reconnect.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // How long close() lets a connection finish before destroying it; the default keeps a timer alive for
      // seconds after a connection the server already closed.
      disconnectTimeout: this.commandTimeoutMs,
      username: address.username,
      password: address.password,
      tls: address.tls ? { ...options.tls } : undefined,
      Connector: GuardedConnector,
    };
    this.cluster = address.kind === 'redis-cluster';
    if (address.kind === 'redis') {
      this.client = new Redis({ ...connection, host: address.host, port: address.port, db: address.db, enableOfflineQueue: false, retryStrategy: retryDelay });
    } else {
      const clusterOptions: ClusterOptions = {
        enableOfflineQueue: false,
        clusterRetryStrategy: retryDelay,
        slotsRefreshTimeout: connectTimeout,
        redisOptions: connection,
      };
      this.client = new Cluster(address.nodes, clusterOptions);
      // Failures of single nodes: the calls that reach them reject; only the cluster's state is logged.
      this.client.on('node error', (e: Error) => (this.lastError = e.message));
    }
    this.client.on('ready', () => this.becameUp());
    this.client.on('error', (e: Error) => (this.lastError = e.message));
    for (const event of ['close', 'reconnecting', 'end']) this.client.on(event, () => this.becameDown(maxDelay));
  }

  async containsRun(keys: readonly string[]): Promise<number> {
    const full = keys.map((k) => this.fullKey(k));
    if (full.length === 0) return 0;
    const found = await this.call(async () => {
      if (this.cluster) {
        // A cluster refuses a pipeline whose keys lie in different hash slots, and block keys are spread
        // over all slots; the per-key commands go out together instead, so the call still takes about one
        // round trip.
        return Promise.all(full.map((k) => this.client.exists(k)));
      }
      const pipeline = this.client.pipeline();
      for (const k of full) pipeline.exists(k);
      const replies = await pipeline.exec();
      if (!replies || replies.length !== full.length) throw new Error(`redis tier: ${replies?.length ?? 'no'} replies to a pipeline of ${full.length} EXISTS`);
      return replies.map(([error, reply]) => {
        if (error) throw error;
        return reply;
      });
    });
    let run = 0;
    for (const reply of found) {
      if (reply !== 1 && reply !== 0) throw this.failed(new Error(`redis tier: EXISTS answered ${String(reply)}`));
      if (reply === 0) break;
      run++;
    }
    return run;
  }

  async get(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    const full = keys.map((k) => this.fullKey(k));
    if (full.length === 0) return [];
    const values = await this.call(() =>
      // MGET across hash slots is refused by a cluster, as are pipelines (see containsRun).
      this.cluster ? Promise.all(full.map((k) => this.client.getBuffer(k))) : this.client.mgetBuffer(...full),
    );
    if (values.length !== full.length) throw this.failed(new Error(`redis tier: ${values.length} values for ${full.length} keys`));
    return values.map((v) => {
      if (v === null) return undefined;
      this.counters.gets++;
      this.counters.getBytes += v.byteLength;
      return v;
    });
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    const full = this.fullKey(key);
    // ioredis sends Buffers as bytes but turns any other object into text: wrap the bytes, without a copy.
    const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    await this.call(() => this.client.set(full, bytes));
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

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.up) {
      try {
        await this.client.quit();
        return;
      } catch {
        // Not answered: drop the connection instead.
      }
    }
    this.client.disconnect();
  }

  private fullKey(key: string): string {
    checkTierKey(key);
    return this.keyPrefix + key;
  }

  /**
   * Runs one call of the tier under the command timeout as a whole: ioredis times single commands, but a
   * cluster may retry a command on another node, and the caller is owed an answer within the timeout.
   */
  private async call<T>(run: () => Promise<T>): Promise<T> {
    if (this.closing) throw this.failed(new Error('the redis tier is closed'));
    if (!this.up) throw this.failed(new Error(`redis tier: ${this.where} is unreachable`));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`redis tier: no answer from ${this.where} within ${this.commandTimeoutMs} ms`)), this.commandTimeoutMs);
    });
    try {
      const work = run();
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
    this.up = true;
    if (this.outage) this.log(`redis tier: reachable again at ${this.where}`);
    this.outage = false;
    this.lastError = undefined;
    for (const wake of [...this.upWaiters]) wake();
  }

  private becameDown(maxDelay: number): void {
    this.up = false;
    if (this.closing || this.outage) return;
    this.outage = true;
    const why = this.lastError ? ` (${this.lastError})` : '';
    this.log(`redis tier: unreachable at ${this.where}${why}; requests compute their KV instead while it retries with backoff (up to every ${maxDelay / 1000} s)`);
  }
}
