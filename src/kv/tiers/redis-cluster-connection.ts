// A Redis Cluster through ioredis: its cluster client refreshes the slot map on its own (a failover, a
// node that moved) and retries the first discovery, which node-redis leaves to the caller. Single nodes'
// failures reach only the calls that need them; the cluster's state is what the watcher hears.
//
// ioredis's own command and socket timeouts are plain timers, which a long engine step makes fire before
// the replies waiting in the sockets are read. So calls are bounded by the tier's deadline alone, and each
// node's liveness by the heartbeat (heartbeat.ts), which does not count the thread's busy time.
import { Cluster, type ClusterOptions, type Redis, type RedisOptions } from 'ioredis';
import type { StoreNode } from './store-address.js';
import { GuardedConnector } from './guarded-connector.js';
import { Heartbeat, PingWatch } from './heartbeat.js';
import { type ConnectionSettings, type ConnectionWatcher, type RedisConnection, settlesWithin } from './redis-connection.js';

export class RedisClusterConnection implements RedisConnection {
  private readonly cluster: Cluster;
  private readonly heartbeat: Heartbeat;
  /** Each node connection's outstanding PING (ioredis replaces a node's connection object when it reconnects). */
  private readonly pings = new WeakMap<Redis, PingWatch>();
  private closing = false;

  constructor(nodes: readonly StoreNode[], private readonly s: ConnectionSettings, private readonly watcher: ConnectionWatcher) {
    const node: RedisOptions = {
      connectTimeout: s.connectTimeoutMs,
      // Calls on a connection that drops are rejected at once, not kept to resend after a reconnect.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // How long close lets a connection finish; the default keeps a timer alive for seconds after a
      // connection the server already closed.
      disconnectTimeout: s.commandTimeoutMs,
      username: s.username,
      password: s.password,
      tls: s.tls,
      Connector: GuardedConnector,
    };
    const options: ClusterOptions = {
      enableOfflineQueue: false,
      clusterRetryStrategy: s.retryDelay,
      slotsRefreshTimeout: s.connectTimeoutMs,
      redisOptions: node,
    };
    this.cluster = new Cluster(nodes.map((n) => ({ ...n })), options);
    this.cluster.on('node error', (e: Error) => watcher.error(e.message));
    this.cluster.on('error', (e: Error) => watcher.error(e.message));
    this.cluster.on('ready', () => watcher.up());
    for (const event of ['close', 'reconnecting', 'end']) this.cluster.on(event, () => watcher.down());
    this.heartbeat = new Heartbeat(s.silentConnectionMs, (now, busyMs) => this.beat(now, busyMs));
  }

  exists(key: string): Promise<number> {
    return this.cluster.exists(key);
  }

  get(key: string): Promise<Buffer | null> {
    return this.cluster.getBuffer(key);
  }

  set(key: string, value: Buffer): Promise<unknown> {
    return this.cluster.set(key, value);
  }

  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.heartbeat.stop();
    if (this.cluster.status === 'ready' && (await settlesWithin(this.cluster.quit(), graceMs))) return;
    this.cluster.disconnect();
  }

  /** One PING outstanding per node; a node that leaves one unanswered for silentConnectionMs is dropped. */
  private beat(now: number, busyMs: number): void {
    if (this.closing) return;
    for (const node of this.cluster.nodes('all')) {
      let ping = this.pings.get(node);
      if (!ping) this.pings.set(node, (ping = new PingWatch(this.s.silentConnectionMs)));
      if (node.status !== 'ready') {
        ping.reset();
        continue;
      }
      ping.beat(now, busyMs, () => node.ping(), () => this.silent(node));
    }
  }

  private silent(node: Redis): void {
    if (this.closing || node.status !== 'ready') return;
    this.watcher.error(`${node.options.host}:${node.options.port}: no answer for ${this.s.silentConnectionMs} ms; dropping the connection`);
    // Fails the calls waiting on it; ioredis drops the node and connects again when a slot needs it.
    node.disconnect();
  }
}
