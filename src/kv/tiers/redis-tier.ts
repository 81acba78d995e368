// The shared tier: values in Redis (one server or a Redis Cluster), seen by every replica that computes the
// same block keys. Redis evicts by itself (run it with `maxmemory-policy allkeys-lru`), so a key may vanish
// at any time; a lookup then finds it absent, never another key's value.
//
// A cache must never make a request slower than computing its KV, so the client fails fast: while Redis is
// down, calls reject at once (no offline queue) instead of waiting for a reconnect; a slow Redis is cut off
// after the command timeout; a connection on which nothing arrives is dropped; reconnects go on forever with
// exponential backoff. One line is logged when an outage starts and one when it ends, not one per call.
import { createClient, createCluster, RESP_TYPES, type RedisClientOptions } from '@redis/client';
import type { ConnectionOptions } from 'node:tls';
import type { BlockTier, BlockTierStats } from './tier.js';
import { checkTierKey } from './tier-key.js';
import { describeStoreAddress, type StoreAddress } from './store-address.js';

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
   * A connection that carries no byte for this long is dropped and reconnected (default 5000 ms, or four
   * command timeouts if that is longer). An idle connection is pinged every half of this, so only one whose
   * pings go unanswered falls silent: a host that vanished without closing the connection, which TCP alone
   * would notice only after many minutes. It must exceed the command timeout, so that a merely slow server
   * is not cut off.
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

/** The commands the tier sends, with bulk replies as Buffers: the same on one server and on a cluster. */
interface BlockCommands {
  exists(key: string): Promise<number>;
  get(key: string): Promise<Buffer | null>;
  set(key: string, value: Buffer): Promise<unknown>;
}

/**
 * Values a get() keeps in flight. One at a time leaves the connection idle between replies; a whole
 * prompt's blocks at once queue megabytes of replies in the socket, which reads slower than a short window.
 */
const GETS_IN_FLIGHT = 2;

export class RedisTier implements BlockTier {
  readonly name = 'redis';
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
  private readonly commands: BlockCommands;
  private readonly connection: { close(): Promise<unknown>; destroy(): unknown };
  private readonly where: string;
  private readonly log: (line: string) => void;
  private readonly maxReconnectDelayMs: number;
  private up = false;
  /** Whether the current outage was logged (one line per outage). */
  private outage = false;
  private lastError: string | undefined;
  private closing = false;
  /** A cluster's health check while it is down, and its retry of the first connect. */
  private clusterTimer: NodeJS.Timeout | undefined;
  private readonly upWaiters = new Set<() => void>();
  private readonly counters = { puts: 0, putBytes: 0, gets: 0, getBytes: 0, failures: 0, skippedWrites: 0 };

  constructor(readonly address: StoreAddress, options: RedisTierOptions = {}) {
    this.keyPrefix = options.keyPrefix ?? 'vserve:kv:';
    if (!KEY_PREFIX.test(this.keyPrefix)) throw new RangeError(`the Redis key prefix may hold up to 64 of A-Z a-z 0-9 : . _ -, got ${JSON.stringify(this.keyPrefix)}`);
    const connectTimeout = checkPositive('connectTimeoutMs', options.connectTimeoutMs ?? 1000);
    this.commandTimeoutMs = checkPositive('commandTimeoutMs', options.commandTimeoutMs ?? 500);
    this.maxReconnectDelayMs = checkPositive('maxReconnectDelayMs', options.maxReconnectDelayMs ?? 5000);
    const silent = checkPositive('silentConnectionMs', options.silentConnectionMs ?? Math.max(5000, 4 * this.commandTimeoutMs));
    if (silent <= this.commandTimeoutMs) throw new RangeError(`silentConnectionMs (${silent}) must exceed commandTimeoutMs (${this.commandTimeoutMs})`);
    this.where = describeStoreAddress(address);
    this.log = options.log ?? (() => {});
    const socket = {
      connectTimeout,
      socketTimeout: silent,
      reconnectStrategy: (retries: number) => this.retryDelay(retries + 1),
      ...(address.tls ? { tls: true as const, ...options.tls } : {}),
    };
    const connection = {
      username: address.username,
      password: address.password,
      // Calls while the connection is down are rejected at once, not kept to send after a reconnect.
      disableOfflineQueue: true,
      pingInterval: Math.floor(silent / 2),
      // The client names itself on connect (CLIENT SETINFO) and awaits the answer before 'ready', so a
      // port that does not speak Redis (a TLS port, another service) never counts as up.
    } satisfies RedisClientOptions;
    const buffers = { [RESP_TYPES.BLOB_STRING]: Buffer };

    if (address.kind === 'redis') {
      const client = createClient({ ...connection, database: address.db, socket: { ...socket, host: address.host, port: address.port } });
      client.on('ready', () => this.becameUp());
      client.on('error', (e: Error) => this.sawError(e));
      for (const event of ['reconnecting', 'end']) client.on(event, () => this.becameDown());
      this.connection = client;
      this.commands = client.withTypeMapping(buffers) as unknown as BlockCommands;
      // The first connect retries by the strategy above until it succeeds or the tier is closed.
      client.connect().catch((e: unknown) => this.sawError(e));
    } else {
      const cluster = createCluster({
        rootNodes: address.nodes.map((n) => ({ socket: { host: n.host, port: n.port } })),
        defaults: { ...connection, socket },
      });
      // Single nodes' failures reach only the calls that need them; the tier is down when no node is ready.
      cluster.on('error', (e: Error) => this.sawError(e));
      cluster.on('node-error', (e: Error) => {
        this.sawError(e);
        this.checkCluster(cluster);
      });
      for (const event of ['node-reconnecting', 'node-disconnect', 'node-ready']) cluster.on(event, () => this.checkCluster(cluster));
      this.connection = cluster;
      this.commands = cluster.withTypeMapping(buffers) as unknown as BlockCommands;
      this.connectCluster(cluster, 1);
    }
  }

  async containsRun(keys: readonly string[]): Promise<number> {
    const full = keys.map((k) => this.fullKey(k));
    if (full.length === 0) return 0;
    // Commands issued together go out in one write (per node of a cluster): one round trip.
    const found = await this.call(() => Promise.all(full.map((k) => this.commands.exists(k))));
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
    const values = await this.call(async () => {
      // One GET per key (a cluster refuses MGET across hash slots), a few in flight.
      const got: (Buffer | null)[] = new Array(full.length).fill(null);
      let next = 0;
      const fetchNext = async () => {
        while (next < full.length) {
          const i = next++;
          got[i] = await this.commands.get(full[i]!);
        }
      };
      await Promise.all(Array.from({ length: Math.min(GETS_IN_FLIGHT, full.length) }, fetchNext));
      return got;
    });
    return values.map((v) => {
      if (v === null) return undefined;
      this.counters.gets++;
      this.counters.getBytes += v.byteLength;
      return v;
    });
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    const full = this.fullKey(key);
    // The client sends Buffers as bytes: wrap other views of the bytes, without a copy.
    const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    await this.call(() => this.commands.set(full, bytes));
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
    clearTimeout(this.clusterTimer);
    if (this.up) {
      try {
        await this.connection.close();
        return;
      } catch {
        // Not answered: drop the connection instead.
      }
    }
    try {
      this.connection.destroy();
    } catch {
      // Never opened, or already closed.
    }
  }

  private fullKey(key: string): string {
    checkTierKey(key);
    return this.keyPrefix + key;
  }

  /** Delay before reconnect attempt `attempt` (from 1): doubling from the first, up to the maximum. */
  private retryDelay(attempt: number): number {
    return Math.min(this.maxReconnectDelayMs, FIRST_RECONNECT_DELAY_MS * 2 ** Math.min(attempt - 1, 30));
  }

  /**
   * Runs one call of the tier under the command timeout as a whole: a call may be several commands, and a
   * cluster may redirect a command to another node, and the caller is owed an answer within the timeout.
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

  private sawError(error: unknown): void {
    this.lastError = error instanceof Error ? error.message || error.name : String(error);
    // A connect that fails before the first 'ready' starts an outage too.
    if (!this.up) this.becameDown();
  }

  /**
   * A cluster's first connect (finding its slots from a seed node) is not retried by the client, so the
   * tier retries it with the same backoff as reconnects.
   */
  private connectCluster(cluster: { connect(): Promise<unknown> }, attempt: number): void {
    cluster.connect().then(
      () => this.checkCluster(cluster as never),
      (e: unknown) => {
        this.sawError(e);
        if (!this.closing) this.clusterTimer = setTimeout(() => this.connectCluster(cluster, attempt + 1), this.retryDelay(attempt));
      },
    );
  }

  /**
   * A cluster is up while any of its masters has a ready connection. Node connections reconnect on their
   * own but announce only their first 'ready', so while down the tier looks again at the reconnect pace.
   */
  private checkCluster(cluster: { masters: readonly { client?: { isReady: boolean } }[] }): void {
    if (this.closing) return;
    clearTimeout(this.clusterTimer);
    if (cluster.masters.some((m) => m.client?.isReady)) {
      this.becameUp();
      return;
    }
    if (cluster.masters.length === 0) return; // Still connecting: connectCluster retries.
    this.becameDown();
    this.clusterTimer = setTimeout(() => this.checkCluster(cluster), Math.min(this.maxReconnectDelayMs, 250));
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
