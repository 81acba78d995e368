// Speed of blended documents (CacheBlend) on RAG traffic: every request is a system prompt, then several
// document chunks drawn from a pool in a random order, then a question, arriving as a Poisson process.
// One engine serves every configuration, back to back on the same requests:
//   full prefill     - no documents marked, and a fresh cache salt per request, so nothing is reused;
//   prefix caching   - no documents marked: the prefix cache reuses what it can (the system prompt, and
//                      rarely a first chunk);
//   blend r=x%       - documents marked, their KV reused from the chunk store with x% recomputed.
// The chunk store is filled first (every chunk of the pool computed once, untimed), as a server that has
// seen its corpus would hold it. Time to first token and throughput as the client sees them.
import { Engine } from '../src/engine/engine.js';
import type { EngineOptions } from '../src/engine/engine-types.js';
import type { RequestParams } from '../src/engine/completion.js';
import { Rng } from '../src/engine/rng.js';
import { randomTokens } from './engine-workload.js';
import { median, round } from './stats.js';
import { summarizeClocks, TokenClock } from './token-clock.js';

export interface RagSpeedOptions {
  model: string;
  /** Chunks in the pool, tokens per chunk, chunks per request. */
  pool: number;
  chunkTokens: number;
  chunks: number;
  systemTokens: number;
  questionTokens: number;
  outputTokens: number;
  /** Requests per configuration, and their mean arrival rate (per second). */
  requests: number;
  rate: number;
  shares: number[];
  rounds: number;
  /** Requests per configuration also sent one at a time, for TTFT without queueing. */
  alone: number;
  seed: number;
  engine: EngineOptions;
  log?: (line: string) => void;
}

export interface RagSpeedRun {
  round: number;
  config: string;
  recompute: number | null;
  ttftP50Ms: number;
  ttftP99Ms: number;
  /** Median TTFT of requests sent one at a time (no queueing). */
  aloneTtftMs: number;
  meanTtftMs: number;
  /** Requests finished per second, from the first arrival to the last token. */
  requestsPerS: number;
  wallS: number;
  cachedTokens: number;
  promptTokens: number;
}

export interface RagSpeedResult {
  model: string;
  promptTokens: number;
  options: Omit<RagSpeedOptions, 'log'>;
  runs: RagSpeedRun[];
  blend: unknown;
}

interface RagRequest {
  at: number;
  prompt: number[];
  documents: [number, number][];
}

function makeRequests(o: RagSpeedOptions, pool: number[][], system: number[], vocab: number, rng: Rng): RagRequest[] {
  let t = 0;
  return Array.from({ length: o.requests }, () => {
    t += -Math.log(1 - rng.next()) / o.rate;
    const order = [...pool.keys()].sort(() => rng.next() - 0.5).slice(0, o.chunks);
    const prompt = [...system];
    const documents: [number, number][] = [];
    for (const c of order) {
      documents.push([prompt.length, prompt.length + pool[c]!.length]);
      prompt.push(...pool[c]!);
    }
    prompt.push(...randomTokens(rng, o.questionTokens, vocab));
    return { at: t, prompt, documents };
  });
}

async function runOne(engine: Engine, prompt: number[], params: RequestParams, clock: TokenClock): Promise<number> {
  let cached = 0;
  for await (const d of engine.generate(prompt, params)) {
    clock.tick(d.tokens.length);
    if (d.usage) cached = d.usage.prompt_tokens_details.cached_tokens;
  }
  return cached;
}

async function replay(engine: Engine, requests: readonly RagRequest[], params: (r: RagRequest, i: number) => RequestParams) {
  const t0 = performance.now();
  const clocks: TokenClock[] = [];
  const cached = await Promise.all(requests.map(async (r, i) => {
    const wait = t0 + r.at * 1000 - performance.now();
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    const clock = new TokenClock();
    clocks.push(clock);
    return runOne(engine, r.prompt, params(r, i), clock);
  }));
  return { summary: summarizeClocks(clocks), clocks, cached: cached.reduce((a, b) => a + b, 0) };
}

export async function measureRagSpeed(o: RagSpeedOptions): Promise<RagSpeedResult> {
  const log = o.log ?? (() => {});
  const engine = await Engine.load(o.model, o.engine);
  try {
    const vocab = engine.info.vocabSize;
    // The benchmark models use the llama-spm vocabulary, whose BOS is 1.
    const bos = 1;
    const rng = new Rng(o.seed);
    const pool = Array.from({ length: o.pool }, () => randomTokens(rng, o.chunkTokens, vocab));
    const system = [bos, ...randomTokens(rng, o.systemTokens, vocab)];
    // Fill the chunk store: every chunk of the pool once, in requests of `chunks` chunks (untimed).
    for (let first = 0; first < o.pool; first += o.chunks) {
      const ids = Array.from({ length: Math.min(o.chunks, o.pool - first) }, (_, i) => first + i);
      const prompt = [...system];
      const documents: [number, number][] = ids.map((c) => {
        const range: [number, number] = [prompt.length, prompt.length + pool[c]!.length];
        prompt.push(...pool[c]!);
        return range;
      });
      prompt.push(...randomTokens(rng, o.questionTokens, vocab));
      await runOne(engine, prompt, { temperature: 0, maxTokens: 1, documents, blend: { recompute: 0 } }, new TokenClock());
      log(`rag speed: chunk store filled with ${Math.min(first + o.chunks, o.pool)}/${o.pool} chunks`);
    }
    const runs: RagSpeedRun[] = [];
    const configs: { name: string; recompute: number | null; params: (r: RagRequest, i: number, round: number) => RequestParams }[] = [
      { name: 'full prefill', recompute: null, params: (_, i, pass) => ({ cacheSalt: `full-${pass}-${i}` }) },
      { name: 'prefix caching', recompute: null, params: () => ({}) },
      ...o.shares.map((r) => ({ name: `blend r=${r * 100}%`, recompute: r, params: (q: RagRequest) => ({ documents: q.documents, blend: { recompute: r } }) })),
    ];
    for (let pass = 0; pass < o.rounds; pass++) {
      const requests = makeRequests(o, pool, system, vocab, new Rng(o.seed + 1 + pass));
      for (const c of configs) {
        const alone: number[] = [];
        for (const [i, q] of requests.slice(0, o.alone).entries()) {
          const clock = new TokenClock();
          await runOne(engine, q.prompt, { temperature: 0, maxTokens: o.outputTokens, ...c.params(q, i, pass + 0.5) }, clock);
          alone.push(clock.ttftMs!);
        }
        const r = await replay(engine, requests, (q, i) => ({ temperature: 0, maxTokens: o.outputTokens, ...c.params(q, i, pass) }));
        const ttfts = r.clocks.map((k) => k.ttftMs!).filter((x) => x !== undefined);
        runs.push({
          round: pass, config: c.name, recompute: c.recompute,
          aloneTtftMs: round3(median(alone)), ttftP50Ms: round3(r.summary.ttftMs.p50), ttftP99Ms: round3(r.summary.ttftMs.p99), meanTtftMs: round3(ttfts.reduce((a, b) => a + b, 0) / ttfts.length),
          requestsPerS: round(requests.length / r.summary.wallS, 4), wallS: round(r.summary.wallS, 2),
          cachedTokens: r.cached, promptTokens: requests.reduce((n, q) => n + q.prompt.length, 0),
        });
        log(`rag speed: round ${pass + 1}/${o.rounds} ${c.name}: alone TTFT ${round(median(alone), 0)} ms; Poisson TTFT p50 ${round(r.summary.ttftMs.p50, 0)} ms, ${round(requests.length / r.summary.wallS, 3)} req/s`);
      }
    }
    const stats = await engine.stats();
    const { log: _log, ...options } = o;
    return { model: o.model, promptTokens: system.length + o.chunks * o.chunkTokens + o.questionTokens, options, runs, blend: stats.blend };
  } finally {
    await engine.close();
  }
}

const round3 = (x: number) => round(x, 1);

/** Per configuration: the median over rounds of TTFT p50 and throughput, and their ratios to full prefill and to prefix caching. */
export function summarizeRagSpeed(runs: readonly RagSpeedRun[]) {
  const configs = [...new Set(runs.map((r) => r.config))];
  const med = (config: string, key: 'ttftP50Ms' | 'requestsPerS' | 'meanTtftMs' | 'aloneTtftMs') => median(runs.filter((r) => r.config === config).map((r) => r[key]));
  const range = (config: string, key: 'ttftP50Ms' | 'requestsPerS') => {
    const xs = runs.filter((r) => r.config === config).map((r) => r[key]);
    return [Math.min(...xs), Math.max(...xs)] as const;
  };
  return configs.map((c) => ({
    config: c,
    aloneTtftMs: med(c, 'aloneTtftMs'),
    aloneVsFull: med(c, 'aloneTtftMs') / med('full prefill', 'aloneTtftMs'),
    aloneVsPrefix: med(c, 'aloneTtftMs') / med('prefix caching', 'aloneTtftMs'),
    ttftP50Ms: med(c, 'ttftP50Ms'),
    ttftRange: range(c, 'ttftP50Ms'),
    meanTtftMs: med(c, 'meanTtftMs'),
    requestsPerS: med(c, 'requestsPerS'),
    ttftVsFull: med(c, 'ttftP50Ms') / med('full prefill', 'ttftP50Ms'),
    ttftVsPrefix: med(c, 'ttftP50Ms') / med('prefix caching', 'ttftP50Ms'),
    throughputVsFull: med(c, 'requestsPerS') / med('full prefill', 'requestsPerS'),
  }));
}
