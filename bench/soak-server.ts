// The server a soak drives: `vserve serve` as a child process on a free loopback port, so its memory
// (RSS from /proc) and its exit on SIGTERM are measured as a user would see them.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from './paths.js';

export interface SoakServerOptions {
  maxSeqs: number;
  maxInflight: number;
  drainTimeoutS: number;
}

export class SoakServer {
  private stderr = '';
  private readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcess, readonly url: string, exited: Promise<number | null>) {
    this.exited = exited;
    child.stderr!.on('data', (d) => (this.stderr = (this.stderr + d).slice(-4000)));
  }

  static async start(o: SoakServerOptions): Promise<SoakServer> {
    const args = [
      join(repoRoot, 'dist/src/cli/main.js'), 'serve', '-m', join(repoRoot, 'models/stories260K.gguf'), '--host', '127.0.0.1', '--port', '0',
      '--max-seqs', String(o.maxSeqs), '--max-inflight', String(o.maxInflight), '--drain-timeout', String(o.drainTimeoutS),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let url: string | undefined;
    for await (const line of createInterface({ input: child.stdout! })) {
      url = /OpenAI API:\s+(http:\/\/\S+)\/v1/.exec(line)?.[1];
      if (url) break;
    }
    if (!url) throw new Error(`vserve serve did not start (exit ${await exited})`);
    // Keep draining stdout so the child never blocks on a full pipe.
    child.stdout!.resume();
    return new SoakServer(child, url, exited);
  }

  /** Resident memory of the server process, in bytes (Linux /proc). */
  rss(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.child.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  }

  /** Pages held by requests (slots not idle) and by the whole pool, from the KV feed's snapshot. */
  async pages(): Promise<{ inUse: number; poolUsed: number; running: number; waiting: number }> {
    const s = (await (await fetch(`${this.url}/api/kv`)).json()) as { usedPages: number; running: number; waiting: number; slots: { state: string; pages: number }[] };
    const inUse = s.slots.filter((x) => x.state !== 'idle').reduce((n, x) => n + x.pages, 0);
    return { inUse, poolUsed: s.usedPages, running: s.running, waiting: s.waiting };
  }

  /** The request counters of /metrics, as "name{labels}" -> value. */
  async counters(): Promise<Record<string, number>> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^vserve:(request_(?:success|failure)_total)\{(\w+)="(\w+)"[^}]*\} (\d+)/gm)) out[`${m[1]}{${m[3]}}`] = Number(m[4]);
    return out;
  }

  /** Sends SIGTERM; resolves with the exit code and the milliseconds the exit took. */
  async terminate(): Promise<{ code: number | null; ms: number }> {
    const t0 = performance.now();
    this.child.kill('SIGTERM');
    const code = await this.exited;
    return { code, ms: performance.now() - t0 };
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }

  get lastStderr(): string {
    return this.stderr;
  }
}
