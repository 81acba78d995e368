// The server a soak drives: `vserve serve` as a child process on a free loopback port, so its memory
// (RSS from /proc) and its exit on SIGTERM are measured as a user would see them.
import { join } from 'node:path';
import { CliProcess } from './cli-process.js';
import { repoRoot } from './paths.js';

export interface SoakServerOptions {
  maxSeqs: number;
  maxInflight: number;
  drainTimeoutS: number;
}

/** `vserve serve` with the bundled model, and what a soak reads of it beyond any CLI process's. */
export class SoakServer {
  private constructor(private readonly process: CliProcess) {}

  static async start(o: SoakServerOptions): Promise<SoakServer> {
    return new SoakServer(
      await CliProcess.start('serve', [
        '-m', join(repoRoot, 'models/stories260K.gguf'), '--max-seqs', String(o.maxSeqs), '--max-inflight', String(o.maxInflight), '--drain-timeout', String(o.drainTimeoutS),
      ]),
    );
  }

  get url(): string {
    return this.process.url;
  }

  rss(): number {
    return this.process.rss();
  }

  /** Pages held by requests (slots not idle) and by the whole pool, from the KV feed's snapshot. */
  async pages(): Promise<{ inUse: number; poolUsed: number; running: number; waiting: number }> {
    const s = (await (await fetch(`${this.url}/api/kv`)).json()) as { usedPages: number; running: number; waiting: number; slots: { state: string; pages: number }[] };
    const inUse = s.slots.filter((x) => x.state !== 'idle').reduce((n, x) => n + x.pages, 0);
    return { inUse, poolUsed: s.usedPages, running: s.running, waiting: s.waiting };
  }

  /** The request counters of /metrics, as "name{reason}" -> value. */
  async counters(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [sample, value] of await this.process.metrics()) {
      const m = /^vserve:(request_(?:success|failure)_total)\{(\w+)="(\w+)"/.exec(sample);
      if (m) out[`${m[1]}{${m[3]}}`] = value;
    }
    return out;
  }

  terminate(): Promise<{ code: number | null; ms: number }> {
    return this.process.terminate();
  }

  kill(): void {
    this.process.kill();
  }

  get lastStderr(): string {
    return this.process.lastStderr;
  }
}
