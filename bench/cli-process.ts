// A `vserve` command (serve, router) as a child process on a free loopback port, as a user runs it: the
// benchmarks measure what crosses its HTTP API, its memory as the OS sees it, and how it exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { NODE_FLAGS } from '../src/cli/node-flags.js';
import { repoRoot } from './paths.js';

export class CliProcess {
  private stderr = '';
  private readonly exited: Promise<number | null>;

  protected constructor(private readonly child: ChildProcess, readonly url: string, exited: Promise<number | null>) {
    this.exited = exited;
    child.stderr!.on('data', (d) => (this.stderr = (this.stderr + d).slice(-4000)));
  }

  /**
   * Runs `vserve COMMAND ARGS --host 127.0.0.1 --port 0` (under the node flags bin/vserve gives) and waits for the line that announces its API
   * (`... http://HOST:PORT/v1`); rejects with its stderr if it exits first.
   */
  static async start(command: string, args: readonly string[]): Promise<CliProcess> {
    const child = spawn(process.execPath, [...NODE_FLAGS, join(repoRoot, 'dist/src/cli/main.js'), command, ...args, '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let url: string | undefined;
    for await (const line of createInterface({ input: child.stdout! })) {
      url = /(http:\/\/[\d.]+:\d+)\/v1\b/.exec(line)?.[1];
      if (url) break;
    }
    if (!url) throw new Error(`vserve ${command} did not start (exit ${await exited}): ${stderr.trim()}`);
    // Keep draining stdout so the child never blocks on a full pipe.
    child.stdout!.resume();
    return new CliProcess(child, url, exited);
  }

  /** Resident memory of the process, in bytes (Linux /proc). */
  rss(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.child.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  }

  /** Every sample of /metrics as "name{labels}" -> value. */
  async metrics(): Promise<Map<string, number>> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const out = new Map<string, number>();
    for (const m of text.matchAll(/^([\w:]+(?:\{[^}]*\})?) (\S+)$/gm)) out.set(m[1]!, Number(m[2]));
    return out;
  }

  /** Sends SIGTERM; resolves with the exit code and the milliseconds the exit took. */
  async terminate(): Promise<{ code: number | null; ms: number }> {
    const t0 = performance.now();
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
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
