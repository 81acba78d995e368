// One Redis server through node-redis (@redis/client): its reply decoder reads multi-megabyte values
// with one copy each, where ioredis's parser copies them into a growing pool of fresh memory and reads
// them at about half the rate (bench/README.md, the cluster benchmark's part 3).
//
// Liveness is the connection's own business here: node-redis drops a socket only after it carried no
// byte either way for a while, and the tier's calls keep writing, so a host that vanished without
// closing the connection would go unnoticed. A heartbeat PING with its own deadline catches it.
import { createClient, RESP_TYPES } from '@redis/client';
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
  private readonly heartbeat: NodeJS.Timeout;
  private closing = false;
  /** When the outstanding heartbeat PING was sent, less the time the thread was busy since; undefined when none is outstanding. */
  private pingSentAt: number | undefined;
  /** When the heartbeat last ran. */
  private lastBeatAt = Date.now();
  private readonly beatEveryMs: number;
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
    this.beatEveryMs = Math.max(1, Math.floor(s.silentConnectionMs / 4));
    this.heartbeat = setInterval(() => this.beat(), this.beatEveryMs);
    this.heartbeat.unref();
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
    clearInterval(this.heartbeat);
    // node-redis cannot destroy a socket that is still connecting: let the attempt end first (the strategy
    // now stops retrying), then end what it opened.
    if (!this.client.isReady) await settlesWithin(this.connecting, graceMs);
    // close() waits for the replies still owed, which a stalled server may never send.
    if (this.client.isReady && (await settlesWithin(this.client.close(), graceMs))) return;
    this.destroy();
  }

  /**
   * Sends a PING when none is outstanding; one unanswered for silentConnectionMs ends the connection. Time
   * the thread spent busy (an engine step between two turns of the event loop) does not count: the answer
   * may be sitting unread in the socket.
   */
  private beat(): void {
    const now = Date.now();
    const busy = Math.max(0, now - this.lastBeatAt - this.beatEveryMs);
    this.lastBeatAt = now;
    if (this.closing || !this.client.isReady) {
      this.pingSentAt = undefined;
      return;
    }
    if (this.pingSentAt === undefined) {
      this.pingSentAt = now;
      const answered = () => (this.pingSentAt = undefined);
      this.commands.ping().then(answered, answered);
      return;
    }
    this.pingSentAt += busy;
    if (now - this.pingSentAt < this.s.silentConnectionMs) return;
    // Let this turn read the socket first: an answer that arrived while the thread was busy counts.
    setImmediate(() => this.checkSilence());
  }

  private checkSilence(): void {
    if (this.pingSentAt === undefined || this.closing || Date.now() - this.pingSentAt < this.s.silentConnectionMs) return;
    this.pingSentAt = undefined;
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
