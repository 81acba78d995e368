// The live KV view behind the web UI: while anyone watches, the engine's stats are sampled every
// intervalMs and pushed over SSE as compact snapshots (kv-snapshot.ts), with a short history of what the
// pool's pages were doing, for the graph. A request that starts running is sampled at once as well, so
// one shorter than the interval still shows up as it runs.
import type { ServerResponse } from 'node:http';
import type { ServingEngine } from './engine-like.js';
import { snapshotOf, type KvSnapshot } from './kv-snapshot.js';
import { SseWriter } from './sse.js';

export type { KvSnapshot } from './kv-snapshot.js';

/** The pool's pages at one moment, by what holds them (they add up to totalPages). */
export interface PoolSample {
  t: number;
  running: number;
  /** Pages only the prefix cache holds. */
  cached: number;
  /** Pages idle slots keep for their next request. */
  idle: number;
  free: number;
}

export const DEFAULT_KV_FEED_INTERVAL_MS = 100;
/** Samples kept for a new subscriber's graph: a minute at the default interval. */
const HISTORY = 600;

export function poolSample(s: KvSnapshot): PoolSample {
  return { t: s.t, running: Math.max(0, s.runningPages), cached: s.cachedPages, idle: s.idlePages, free: s.freePages };
}

export class KvFeed {
  private readonly clients = new Set<SseWriter>();
  private readonly history: PoolSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;
  /** A sample was asked for while one was being taken: take another when it is done. */
  private again = false;

  constructor(private readonly engine: ServingEngine, private readonly intervalMs = DEFAULT_KV_FEED_INTERVAL_MS) {}

  async snapshot(): Promise<KvSnapshot> {
    return snapshotOf(await this.engine.stats(), this.engine.info.maxContext);
  }

  /** Streams to this response until the client leaves or close() is called. */
  subscribe(res: ServerResponse): void {
    const sse = new SseWriter(res);
    sse.open();
    sse.event('history', { intervalMs: this.intervalMs, samples: this.history });
    this.clients.add(sse);
    res.on('close', () => {
      this.clients.delete(sse);
      if (this.clients.size === 0) this.stop();
    });
    this.timer ??= setInterval(() => void this.tick(), this.intervalMs);
    void this.tick();
  }

  /** Samples now rather than at the next interval (a request just started running), if anyone watches. */
  sampleNow(): void {
    if (this.clients.size === 0) return;
    if (this.sampling) this.again = true;
    else void this.tick();
  }

  /** Ends every subscriber's stream (shutdown must not wait on these endless responses). */
  close(): void {
    this.stop();
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.sampling) return; // a slow step: skip rather than pile up stats requests
    this.sampling = true;
    try {
      const snap = await this.snapshot();
      this.history.push(poolSample(snap));
      if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
      for (const c of this.clients) c.event('kv', snap);
    } catch {
      // The engine is closing: the feed just stops.
      this.close();
    } finally {
      this.sampling = false;
      if (this.again && this.clients.size > 0) {
        this.again = false;
        void this.tick();
      }
    }
  }
}
