// One replica's prefix-cache block events (/v1/kv/events), followed for as long as the router runs: the
// hello gives the keys cached now, later events the changes. When the stream breaks (the replica died or
// restarted) what the router knew is stale, so it is dropped, and the feed reconnects with a growing
// delay; the next hello brings the replica's whole set again.
import type { BlockEvents } from '../engine/block-events.js';
import { sseEvents } from '../loadgen/sse-frames.js';
import { chainParamsOf, type ChainParams } from './chain-params.js';
import { fetchFailure } from './fetch-failure.js';

export interface BlockFeedHandlers {
  hello(params: ChainParams, keys: readonly string[]): void;
  blocks(events: BlockEvents): void;
  /** The stream is gone (or never came): the blocks known so far are stale. `reason` is for the log. */
  lost(reason: string): void;
}

export interface BlockFeedOptions {
  /** Sent with every request (the replica's API key). */
  headers?: Record<string, string>;
  /** First delay before a reconnect, doubled after each failure up to maxRetryMs (defaults 250 ms, 5 s). */
  minRetryMs?: number;
  maxRetryMs?: number;
}

export class BlockFeed {
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    private readonly handlers: BlockFeedHandlers,
    private readonly options: BlockFeedOptions = {},
  ) {}

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async run(): Promise<void> {
    const min = this.options.minRetryMs ?? 250;
    const max = this.options.maxRetryMs ?? 5000;
    let delay = min;
    while (!this.abort.signal.aborted) {
      const reason = await this.follow(() => (delay = min));
      if (this.abort.signal.aborted) return;
      this.handlers.lost(reason);
      await sleep(delay, this.abort.signal);
      delay = Math.min(max, delay * 2);
    }
  }

  /** Reads the stream until it ends; `connected` is called at its hello. Returns why it ended. */
  private async follow(connected: () => void): Promise<string> {
    try {
      const res = await fetch(`${this.url}/v1/kv/events`, { headers: { accept: 'text/event-stream', ...this.options.headers }, signal: this.abort.signal });
      if (!res.ok || !res.body) {
        const body = await res.text().catch(() => '');
        const message = /"message":\s*"([^"]*)"/.exec(body)?.[1];
        return `GET /v1/kv/events answered ${res.status}${message ? `: ${message}` : ''}`;
      }
      for await (const e of sseEvents(res.body)) {
        if (e.event === 'hello') {
          const hello = JSON.parse(e.data) as { keys?: unknown };
          const keys = Array.isArray(hello.keys) ? hello.keys.filter((k): k is string => typeof k === 'string') : [];
          this.handlers.hello(chainParamsOf(hello), keys);
          connected();
        } else if (e.event === 'blocks') {
          const { stored, removed } = JSON.parse(e.data) as Partial<BlockEvents>;
          this.handlers.blocks({ stored: stored ?? [], removed: removed ?? [] });
        }
      }
      return 'the block event stream ended';
    } catch (e) {
      return `the block event stream failed: ${fetchFailure(e)}`;
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
