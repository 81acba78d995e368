// One Redis server through node-redis (@redis/client): its reply decoder reads multi-megabyte values
// with one copy each, where ioredis's parser copies them into a growing pool of fresh memory and reads
// them at about half the rate (bench/README.md, the cluster benchmark's part 3).
//
// Liveness is the heartbeat's (heartbeat.ts): node-redis drops a socket only after it carried no byte
// either way for a while, and the tier's calls keep writing.
import { createClient, RESP_TYPES } from '@redis/client';
import { Heartbeat, PingWatch } from './heartbeat.js';
import { type ConnectionSettings, type ConnectionWatcher, type RedisConnection, settlesWithin } from './redis-connection.js';

interface Server {
  host: string;
  port: number;
  db: number;
}

/** The client as the connection uses it, with bulk replies as Buffers. */
interface BufferCommands {
  exists(key: string): Promise<number>;
  get(key: string): Promise<Buffer | null>;
  set(key: string, value: Buffer): Promise<unknown>;
  ping(): Promise<unknown>;
}

export class RedisServerConnection implements RedisConnection {
  private readonly client: ReturnType<typeof createClient>;
  private readonly commands: BufferCommands;
  private readonly heartbeat: Heartbeat;
  private readonly ping: PingWatch;
  private closing = false;
  /** The current connect (with its retries): settles once connected, or once retrying stops. */
  private connecting: Promise<void> = Promise.resolve();

  constructor(server: Server, private readonly s: ConnectionSettings, private readonly watcher: ConnectionWatcher) {
    this.client = createClient({
      username: s.username,
      password: s.password,
      database: server.db,
      // Calls while the connection is down are rejected at once, not kept to send after a reconnect.
      disableOfflineQueue: true,
      socket: {
        host: server.host,
        port: server.port,
        connectTimeout: s.connectTimeoutMs,
        // Once closing, a reconnect attempt in flight must not start another.
        reconnectStrategy: (retries: number) => (this.closing ? new Error('closed') : s.retryDelay(retries + 1)),
        ...(s.tls ? { tls: true as const, ...s.tls } : {}),
      },
    });
    // 'ready' comes after the client named itself (CLIENT SETINFO) and got the answer, so a port that does
    // not speak Redis (a TLS port, another service) never counts as up.
    this.client.on('ready', () => {
      if (!this.closing) watcher.up();
    });
    this.client.on('error', (e: Error) => watcher.error(e.message || e.name));
    for (const event of ['reconnecting', 'end']) this.client.on(event, () => watcher.down());
    this.commands = this.client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }) as unknown as BufferCommands;
    this.connect();
    this.ping = new PingWatch(s.silentConnectionMs);
    this.heartbeat = new Heartbeat(s.silentConnectionMs, (now, busyMs) => this.beat(now, busyMs));
  }

  exists(key: string): Promise<number> {
    return this.commands.exists(key);
  }

  get(key: string): Promise<Buffer | null> {
    return this.commands.get(key);
  }

  set(key: string, value: Buffer): Promise<unknown> {
    return this.commands.set(key, value);
  }

  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.heartbeat.stop();
    // node-redis cannot destroy a socket that is still connecting: let the attempt end first (the strategy
    // now stops retrying), then end what it opened.
    if (!this.client.isReady) await settlesWithin(this.connecting, graceMs);
    // close() waits for the replies still owed, which a stalled server may never send.
    if (this.client.isReady && (await settlesWithin(this.client.close(), graceMs))) return;
    this.destroy();
  }

  /** One PING outstanding at a time; one unanswered for silentConnectionMs ends the connection. */
  private beat(now: number, busyMs: number): void {
    if (this.closing || !this.client.isReady) return this.ping.reset();
    this.ping.beat(now, busyMs, () => this.commands.ping(), () => this.silent());
  }

  private silent(): void {
    if (this.closing) return;
    this.watcher.error(`no answer for ${this.s.silentConnectionMs} ms; reconnecting`);
    this.watcher.down();
    // Drops the socket and every call waiting on it, then connects again by the strategy.
    this.destroy();
    this.connect();
  }

  /** Connects, retrying by the strategy until connected or closed. */
  private connect(): void {
    this.connecting = this.client.connect().then(
      () => {},
      (e: unknown) => this.watcher.error(e instanceof Error ? e.message : String(e)),
    );
  }

  private destroy(): void {
    try {
      this.client.destroy();
    } catch {
      // Already closed.
    }
  }
}
