// One replica as the router sees it: its URL; whether it is up (its /health, polled, and every failed
// request); the requests the router has in flight on it; and the prefix-cache blocks it holds, mirrored
// from its block event stream. A dead replica gets no new requests and comes back once /health answers.
import type { BlockEvents } from '../engine/block-events.js';
import { BlockFeed } from './block-feed.js';
import type { ChainParams } from './chain-params.js';
import { fetchFailure } from './fetch-failure.js';
import type { ReplicaView } from './routing-policy.js';

export type ReplicaState = 'starting' | 'up' | 'down';

/** A request the router has sent to a replica and not yet seen end. */
export interface InFlight {
  /** Block keys of its prompt (empty when unknown), which the replica is computing or holds. */
  readonly chain: readonly string[];
  /** Its prompt's length in blocks (RouteRequest.blocks). */
  readonly blocks: number;
  /** Blocks of its prompt the replica had to compute when it was sent (the rest were cached or being computed there). */
  readonly prefill: number;
  /** Whether its answer has begun (a replica answers with its first token): its prefill is done. */
  started: boolean;
}

export interface ReplicaOptions {
  /** Sent with every request to the replica (its API key). */
  headers?: Record<string, string>;
  /** How often /health is polled, and how long one poll may take (defaults 1 s and 2 s). */
  healthIntervalMs?: number;
  healthTimeoutMs?: number;
  /** Lines for the operator's log (state changes, never one per request). */
  log?: (line: string) => void;
  /** The replica's block event stream said hello (or hello again after a reconnect). */
  onHello?: (replica: Replica) => void;
}

export class Replica implements ReplicaView {
  state: ReplicaState = 'starting';
  /** Chain parameters from the last hello; undefined while its block stream is down. */
  params: ChainParams | undefined;
  /** Set (by the pool) when its keys are not the other replicas': why, in words. It then gets no requests. */
  incompatible: string | undefined;
  private readonly cached = new Set<string>();
  /** Keys of the prompts in flight here (a count each): being computed, so as good as cached for routing. */
  private readonly computing = new Map<string, number>();
  private readonly requests = new Set<InFlight>();
  private readonly feed: BlockFeed;
  private healthTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastFeedProblem: string | undefined;

  constructor(
    readonly url: string,
    private readonly options: ReplicaOptions = {},
  ) {
    this.feed = new BlockFeed(url, {
      hello: (params, keys) => this.hello(params, keys),
      blocks: (e) => this.apply(e),
      lost: (reason) => this.feedLost(reason),
    }, { headers: options.headers });
  }

  /** Takes new requests: up, and building keys as the other replicas do. */
  get eligible(): boolean {
    return this.state === 'up' && this.incompatible === undefined;
  }

  get inFlight(): number {
    return this.requests.size;
  }

  /**
   * Blocks the requests in flight here still have to compute: the load the prefix policy weighs. Prefill is
   * what queues a request behind others; requests that only decode share each step's weight reads and
   * add little, and cached or shared prompt blocks cost nothing again.
   */
  get activeBlocks(): number {
    let n = 0;
    for (const r of this.requests) if (!r.started) n += r.prefill;
    return n;
  }

  /** Blocks in its prefix cache, as its event stream last said. */
  get cachedBlocks(): number {
    return this.cached.size;
  }

  cachedPrefix(chain: readonly string[]): number {
    let n = 0;
    while (n < chain.length && (this.cached.has(chain[n]!) || this.computing.has(chain[n]!))) n++;
    return n;
  }

  start(): void {
    this.feed.start();
    void this.poll();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.healthTimer);
    await this.feed.stop();
  }

  begin(request: InFlight): void {
    this.requests.add(request);
    for (const h of request.chain) this.computing.set(h, (this.computing.get(h) ?? 0) + 1);
  }

  end(request: InFlight): void {
    if (!this.requests.delete(request)) return;
    for (const h of request.chain) {
      const n = this.computing.get(h)! - 1;
      if (n === 0) this.computing.delete(h);
      else this.computing.set(h, n);
    }
  }

  /** A request to it failed to connect or broke off: no new requests until /health says it is back. */
  markDown(reason: string): void {
    this.setState('down', reason);
  }

  private async poll(): Promise<void> {
    if (this.stopped) return;
    const timeoutMs = this.options.healthTimeoutMs ?? 2000;
    try {
      const res = await fetch(`${this.url}/health`, { headers: this.options.headers, signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel();
      if (res.ok) this.setState('up');
      else this.setState('down', `/health answered ${res.status}`);
    } catch (e) {
      this.setState('down', (e as Error).name === 'TimeoutError' ? `/health did not answer within ${timeoutMs} ms` : fetchFailure(e));
    }
    if (!this.stopped) this.healthTimer = setTimeout(() => void this.poll(), this.options.healthIntervalMs ?? 1000);
  }

  private setState(state: ReplicaState, reason?: string): void {
    if (state === this.state || this.stopped) return;
    const was = this.state;
    this.state = state;
    if (state === 'up') this.log(was === 'starting' ? 'up' : 'up again');
    else this.log(`down: ${reason}`);
  }

  private hello(params: ChainParams, keys: readonly string[]): void {
    this.cached.clear();
    for (const k of keys) this.cached.add(k);
    this.params = params;
    this.lastFeedProblem = undefined;
    this.options.onHello?.(this);
  }

  private apply(e: BlockEvents): void {
    for (const k of e.removed) this.cached.delete(k);
    for (const k of e.stored) this.cached.add(k);
  }

  private feedLost(reason: string): void {
    this.cached.clear();
    this.params = undefined;
    // A replica that keeps refusing (no prefix cache) or stays dead is reported once, not at every retry.
    if (reason !== this.lastFeedProblem && !this.stopped) this.log(`block events: ${reason}; routing to it without its cached prefixes until the stream is back`);
    this.lastFeedProblem = reason;
  }

  private log(message: string): void {
    this.options.log?.(`replica ${this.url}: ${message}`);
  }
}
