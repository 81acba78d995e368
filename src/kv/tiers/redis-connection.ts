// What the Redis tier needs of a connection to Redis, one server or a cluster: three commands with bulk
// replies as Buffers, and word of when it can be used. Each form is a file of its own
// (redis-server-connection.ts, redis-cluster-connection.ts); the tier above them times calls, counts
// and logs.

export interface RedisConnection {
  exists(key: string): Promise<number>;
  get(key: string): Promise<Buffer | null>;
  set(key: string, value: Buffer): Promise<unknown>;
  /** Ends the connection: gracefully within `graceMs`, then by force. Reconnecting stops. */
  close(graceMs: number): Promise<void>;
}

/** How a connection reports its state. `down` may repeat during one outage; `error` comes before it. */
export interface ConnectionWatcher {
  up(): void;
  down(): void;
  error(message: string): void;
}

/** Settings both forms share, already checked by the tier. */
export interface ConnectionSettings {
  username?: string;
  password?: string;
  /** TLS options for rediss://, or undefined for plain TCP. */
  tls?: import('node:tls').ConnectionOptions;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  silentConnectionMs: number;
  /** Delay before reconnect attempt `attempt` (from 1). */
  retryDelay(attempt: number): number;
}

/** Whether `work` settles within `ms` (false if it rejects or takes longer); the timer keeps no process alive. */
export function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  const settled = work.then(() => true, () => false);
  return Promise.race([settled, new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
}
