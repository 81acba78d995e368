// A Redis Cluster through ioredis: its cluster client refreshes the slot map on its own (a failover, a
// node that moved) and retries the first discovery, which node-redis leaves to the caller. Single nodes'
// failures reach only the calls that need them; the cluster's state is what the watcher hears.
import { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { StoreNode } from './store-address.js';
import { GuardedConnector } from './guarded-connector.js';
import { type ConnectionSettings, type ConnectionWatcher, type RedisConnection, settlesWithin } from './redis-connection.js';

export class RedisClusterConnection implements RedisConnection {
  private readonly cluster: Cluster;

  constructor(nodes: readonly StoreNode[], s: ConnectionSettings, watcher: ConnectionWatcher) {
    const node: RedisOptions = {
      connectTimeout: s.connectTimeoutMs,
      commandTimeout: s.commandTimeoutMs,
      // ioredis counts this only while commands wait for a reply.
      socketTimeout: s.silentConnectionMs,
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
    if (this.cluster.status === 'ready' && (await settlesWithin(this.cluster.quit(), graceMs))) return;
    this.cluster.disconnect();
  }
}
