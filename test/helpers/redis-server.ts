// A real redis-server for the Redis tier's tests: on a free loopback port, with nothing persisted, in a
// temporary directory of its own. Tests stop it in `after`; any still running when the test process exits
// or is stopped by a signal are killed then, so none outlives the tests. A 3-node Redis Cluster is built from the same servers.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<ChildProcess>();
const killLive = () => {
  for (const child of live) child.kill('SIGKILL');
};
process.on('exit', killLive);
// A test process stopped by a signal (the runner's timeout, Ctrl-C) runs no 'exit' handlers: kill the
// servers, then let the signal do what it would have done.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killLive();
    process.kill(process.pid, signal);
  });
}

function runs(command: string): boolean {
  const probe = command === 'openssl' ? ['version'] : ['--version'];
  return spawnSync(command, probe, { stdio: 'ignore' }).status === 0;
}

/**
 * Why the Redis tests skip, or false to run them. In CI (CI set) they always run, so a missing
 * redis-server fails them (.ci/run installs it).
 */
export function redisSkipReason(needs: string[] = ['redis-server']): string | false {
  if (process.env.CI) return false;
  const missing = needs.filter((c) => !runs(c));
  return missing.length === 0 ? false : `${missing.join(' and ')} not installed (apt-get install -y redis-server redis-tools openssl)`;
}

/** A port nobody listens on now: the system's pick for port 0, released at once. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Sends PING; resolves true if PONG came back within `timeoutMs`. */
function pings(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RedisServerOptions {
  /** Memory limit (bytes, or Redis's form such as '2mb'); keys are then evicted least recently used first. */
  maxmemory?: number | string;
  /** Further `--name value` settings. */
  settings?: string[];
}

export class RedisServer {
  private child: ChildProcess | undefined;
  private output = '';
  private readonly dir = mkdtempSync(join(tmpdir(), 'vserve-redis-'));

  private constructor(
    readonly port: number,
    private readonly options: RedisServerOptions,
  ) {}

  /** Starts a server and waits until it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    for (let attempt = 1; ; attempt++) {
      const server = new RedisServer(await freePort(), options);
      try {
        await server.launch();
        return server;
      } catch (e) {
        await server.stop();
        // Someone else took the port between our pick and redis-server's bind: pick again.
        if (attempt < 3 && server.output.includes('Address already in use')) continue;
        throw e;
      }
    }
  }

  get address(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Stops the server (SIGTERM) and waits for it to exit. */
  async stop(): Promise<void> {
    await this.end('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Kills the server (SIGKILL), as a crash would, and waits for it to exit. */
  kill(): Promise<void> {
    return this.end('SIGKILL');
  }

  /** Stops the process (SIGSTOP): connections stay open and nothing answers, as when a host vanishes. */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Lets a frozen server run again (SIGCONT). */
  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  /** Starts the server again on the same port (after stop or kill), empty. */
  async restart(): Promise<void> {
    await this.end('SIGTERM');
    await this.launch();
  }

  private async launch(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir];
    if (this.options.maxmemory !== undefined) args.push('--maxmemory', String(this.options.maxmemory), '--maxmemory-policy', 'allkeys-lru');
    args.push(...(this.options.settings ?? []));
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(child);
    this.output = '';
    const keep = (d: Buffer) => (this.output = (this.output + d.toString()).slice(-4000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let exited = false;
    let spawnError: Error | undefined;
    child.once('error', (e) => (spawnError = e));
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      if (this.child === child) this.child = undefined;
    });
    const deadline = Date.now() + 10_000;
    while (!(await pings(this.port, 500))) {
      if (spawnError) throw new Error(`cannot start redis-server: ${spawnError.message}`);
      if (exited) throw new Error(`redis-server exited at start:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING on port ${this.port} within 10 s:\n${this.output}`);
      await sleep(20);
    }
  }

  private async end(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      // A frozen server would not act on the signal until it runs again.
      child.kill('SIGCONT');
      child.kill(signal);
      await exited;
    }
    live.delete(child);
  }
}

/** Three redis-servers joined into a Redis Cluster (no replicas), every slot served. */
export class RedisClusterServers {
  private constructor(readonly nodes: RedisServer[]) {}

  /** `settings`: further `--name value` settings for every node. */
  static async start(count = 3, settings: string[] = []): Promise<RedisClusterServers> {
    const nodes: RedisServer[] = [];
    try {
      for (let i = 0; i < count; i++) {
        // The cluster bus gets a port of its own (cluster-port), so that both are free ones.
        const busPort = await freePort();
        nodes.push(await RedisServer.start({ settings: ['--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-node-timeout', '2000', ...settings] }));
      }
      const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      if (create.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`);
      const cluster = new RedisClusterServers(nodes);
      await cluster.waitUntilOk();
      return cluster;
    } catch (e) {
      await Promise.all(nodes.map((n) => n.stop()));
      throw e;
    }
  }

  get address(): string {
    return `redis+cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }

  /** Waits until every node reports cluster_state:ok (every slot assigned and reachable). */
  private async waitUntilOk(): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const states = this.nodes.map((n) => spawnSync('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8' }).stdout ?? '');
      if (states.every((s) => s.includes('cluster_state:ok'))) return;
      if (Date.now() > deadline) throw new Error(`the cluster did not reach cluster_state:ok:\n${states.join('\n')}`);
      await sleep(100);
    }
  }
}
