// The live KV view behind the web UI: while anyone watches, the engine's stats are sampled a few times
// a second and pushed over SSE as compact snapshots (pool totals and, per slot, tokens / pages mapped /
// pages shared), with a short history of the pool's used and free pages for the graph.
import type { ServerResponse } from 'node:http';
import type { EngineStats } from '../engine/engine-types.js';
import type { ServingEngine } from './engine-like.js';
import { SseWriter } from './sse.js';

export interface KvSnapshot {
  /** Milliseconds since the epoch. */
  t: number;
  running: number;
  waiting: number;
  kind: string;
  pageBytes: number;
  totalPages: number;
  usedPages: number;
  freePages: number;
  sharedPages: number;
  /** Of usedPages: pages of running sequences, pages only the prefix cache holds, pages idle slots keep. */
  runningPages: number;
  cachedPages: number;
  idlePages: number;
  /** The prefix cache's blocks and hit rate (null when it is off). */
  prefixCache: { entries: number; hitRate: number } | null;
  storedTokens: number;
  steps: number;
  preemptions: number;
  slots: { slot: number; state: string; tokens: number; pages: number; sharedPages: number }[];
}

export interface PoolSample {
  t: number;
  used: number;
  /** Pages only the prefix cache holds (part of used). */
  cached: number;
  free: number;
}

const HISTORY = 600;

export function snapshotOf(s: EngineStats, t = Date.now()): KvSnapshot {
  const kv = s.kv;
  return {
    t,
    running: s.running,
    waiting: s.waiting,
    kind: kv.kind,
    pageBytes: kv.pageBytes,
    totalPages: kv.totalPages,
    usedPages: kv.usedPages,
    freePages: kv.freePages,
    sharedPages: kv.sharedPages,
    runningPages: kv.runningPages,
    cachedPages: kv.cachedPages,
    idlePages: kv.idlePages,
    prefixCache: s.prefixCache ? { entries: s.prefixCache.entries, hitRate: s.prefixCache.hitRate } : null,
    storedTokens: kv.storedTokens,
    steps: s.step.steps,
    preemptions: s.step.preemptions,
    slots: kv.slots.map((x) => ({ slot: x.slot, state: x.state, tokens: x.tokens, pages: x.pages, sharedPages: x.sharedPages })),
  };
}

export class KvFeed {
  private readonly clients = new Set<SseWriter>();
  private readonly history: PoolSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;

  constructor(private readonly engine: ServingEngine, private readonly intervalMs = 200) {}

  async snapshot(): Promise<KvSnapshot> {
    return snapshotOf(await this.engine.stats());
  }

  /** Streams to this response until the client leaves or close() is called. */
  subscribe(res: ServerResponse): void {
    const sse = new SseWriter(res);
    sse.open();
    sse.event('history', this.history);
    this.clients.add(sse);
    res.on('close', () => {
      this.clients.delete(sse);
      if (this.clients.size === 0) this.stop();
    });
    this.timer ??= setInterval(() => void this.tick(), this.intervalMs);
    void this.tick();
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
      this.history.push({ t: snap.t, used: snap.usedPages, cached: snap.cachedPages, free: snap.freePages });
      if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
      for (const c of this.clients) c.event('kv', snap);
    } catch {
      // The engine is closing: the feed just stops.
      this.close();
    } finally {
      this.sampling = false;
    }
  }
}
