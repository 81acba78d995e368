// vserve's side of the prefix-cache benchmark: an Engine loaded per run, requests replayed at their
// arrival times (or conversations turn by turn), every token timed as the caller sees it, and the KV
// pool's memory sampled while the run lasts.
import { readFileSync } from 'node:fs';
import { Engine, type EngineOptions } from '../src/index.js';
import type { BenchRequest } from './engine-workload.js';
import type { Conversation } from './prefix-workloads.js';
import { TokenClock, sleepUntil } from './token-clock.js';

export interface MemoryPeaks {
  /** Peak of (usedPages - idlePages) x pageBytes: pages holding some running sequence's or the cache's KV. */
  kvBytes: number;
  /** Peak of runningPages x pageBytes (the same less pages only the cache holds). */
  runningBytes: number;
  /** Peak of the pool's residentBytes (what the OS accounts to it). */
  residentBytes: number;
  /**
   * Peak process RSS less the RSS after loading and warming up. Linux counts a page in RSS once per
   * mapping, so a prefix page the virtual manager maps into 16 slots counts 16 times here.
   */
  rssDeltaBytes: number;
  /** The same for PSS (/proc/self/smaps_rollup), which counts such a page once; sampled every 5th time. */
  pssDeltaBytes: number;
  pageBytes: number;
  samples: number;
}

/** The process's proportional set size (a page mapped several times counts once). */
function pssBytes(): number {
  const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Samples engine.stats() and the process RSS every `everyMs` until stopped. */
class MemorySampler {
  private readonly peaks: MemoryPeaks = { kvBytes: 0, runningBytes: 0, residentBytes: 0, rssDeltaBytes: 0, pssDeltaBytes: 0, pageBytes: 0, samples: 0 };
  private readonly rss0 = process.memoryUsage.rss();
  private readonly pss0 = pssBytes();
  private readonly timer: NodeJS.Timeout;
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly engine: Engine, everyMs: number) {
    this.timer = setInterval(() => (this.pending = this.sample()), everyMs);
  }

  private async sample(): Promise<void> {
    const kv = (await this.engine.stats()).kv;
    const p = this.peaks;
    p.pageBytes = kv.pageBytes;
    p.kvBytes = Math.max(p.kvBytes, (kv.usedPages - kv.idlePages) * kv.pageBytes);
    p.runningBytes = Math.max(p.runningBytes, kv.runningPages * kv.pageBytes);
    p.residentBytes = Math.max(p.residentBytes, kv.residentBytes);
    p.rssDeltaBytes = Math.max(p.rssDeltaBytes, process.memoryUsage.rss() - this.rss0);
    // Reading smaps_rollup walks every mapping (thousands here), so less often.
    if (p.samples % 5 === 0) p.pssDeltaBytes = Math.max(p.pssDeltaBytes, pssBytes() - this.pss0);
    p.samples++;
  }

  async stop(): Promise<MemoryPeaks> {
    clearInterval(this.timer);
    await this.pending;
    await this.sample();
    return { ...this.peaks };
  }
}

export interface RequestOutcome {
  clock: TokenClock;
  promptTokens: number;
  cachedTokens: number;
}

/** Streams one request, timed from now; returns its outcome and the tokens it generated. */
async function stream(engine: Engine, prompt: readonly number[], maxTokens: number): Promise<{ outcome: RequestOutcome; output: number[] }> {
  const clock = new TokenClock();
  const output: number[] = [];
  let cachedTokens = 0;
  for await (const d of engine.generate(prompt, { temperature: 0, maxTokens })) {
    clock.tick(d.tokens.length);
    output.push(...d.tokens);
    if (d.usage) cachedTokens = d.usage.prompt_tokens_details.cached_tokens;
  }
  return { outcome: { clock, promptTokens: prompt.length, cachedTokens }, output };
}

export interface EngineRun<T> {
  result: T;
  memory: MemoryPeaks;
  prefixHitRate: number | undefined;
  preemptions: number;
}

/**
 * Loads an engine, warms it up on a prompt shorter than a cache block (so nothing is cached), runs
 * `body` while sampling memory every 50 ms, and closes the engine.
 */
export async function withEngine<T>(modelPath: string, options: EngineOptions, body: (engine: Engine) => Promise<T>): Promise<EngineRun<T>> {
  const engine = await Engine.load(modelPath, options);
  try {
    for await (const _ of engine.generate([1, 100, 200, 300], { temperature: 0, maxTokens: 2 })); // warm-up
    const base = await engine.stats();
    const sampler = new MemorySampler(engine, 50);
    const result = await body(engine);
    const memory = await sampler.stop();
    const end = await engine.stats();
    return { result, memory, prefixHitRate: end.prefixCache?.hitRate, preemptions: end.step.preemptions - base.step.preemptions };
  } finally {
    await engine.close();
  }
}

/** Sends each request at its arrival time (seconds after the start); all run concurrently. */
export async function replayRequests(engine: Engine, requests: readonly BenchRequest[]): Promise<RequestOutcome[]> {
  const t0 = performance.now();
  return Promise.all(requests.map(async (r) => {
    await sleepUntil(t0 + r.at * 1000);
    return (await stream(engine, r.prompt, r.maxTokens)).outcome;
  }));
}

/**
 * Runs the conversations concurrently; within one, each turn is sent as soon as the previous reply
 * ends, with the prompt = the previous prompt + the reply's tokens + the new user tokens. Returns the
 * outcomes per conversation, in turn order.
 */
export async function replayConversations(engine: Engine, conversations: readonly Conversation[]): Promise<RequestOutcome[][]> {
  const t0 = performance.now();
  return Promise.all(conversations.map(async (c) => {
    await sleepUntil(t0 + c.at * 1000);
    const outcomes: RequestOutcome[] = [];
    let history: number[] = [];
    for (const turn of c.turns) {
      const prompt = [...history, ...turn.user];
      const { outcome, output } = await stream(engine, prompt, turn.maxTokens);
      outcomes.push(outcome);
      history = [...prompt, ...output];
    }
    return outcomes;
  }));
}
